"""Refuse a bake whose answers would make a broken project, before any file is written.

Cookiecutter renders this file with Jinja, then runs it. The answers arrive as one JSON
string, never as code, and the file stays valid Python unrendered so the tests can
import ``problems_in`` and check every rule directly.
"""

from __future__ import annotations

import json
import keyword
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

ANSWERS_JSON = r"""{{ cookiecutter | tojson }}"""

SLUG = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
PACKAGE = re.compile(r"[a-z][a-z0-9_]*")
QUEUE = re.compile(r"[a-z][a-z0-9_-]*")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
CHOICES = {
    "python_version": ("3.11", "3.12", "3.13"),
    "worker_bootstrap": ("modules", "manifest", "explicit"),
    "worker_per_queue": ("no", "yes"),
    "broker": ("redis", "rabbitmq"),
    "use_flower": ("yes", "no"),
    "ci": ("github", "none"),
    "open_source_license": ("MIT", "Apache-2.0", "none"),
}
# The queue each job is routed to in config/jobs.yaml (a test keeps the two in step).
JOB_QUEUES = {
    "SendRestockEmailJob": "notifications",
    "BuildProductSummaryJob": "analytics",
    "SyncProductToErpJob": "erp",
}
# Import names the generated project already uses: a package named like one would shadow it.
TAKEN_IMPORT_NAMES = frozenset(
    {"alembic", "celery", "fastapi", "kombu", "loom", "msgspec", "sqlalchemy", "tests", "uvicorn"}
)

Rule = Callable[[str, Mapping[str, Any]], "str | None"]


def queue_names(value: str) -> list[str]:
    return [name.strip() for name in value.split(",")]


def _one_line(value: str, answers: Mapping[str, Any]) -> str | None:
    return None if value.strip() and "\n" not in value else "must be one non-empty line"


def _slug(value: str, answers: Mapping[str, Any]) -> str | None:
    if SLUG.fullmatch(value) and len(value) <= 64:
        return None
    return (
        "must be lowercase letters and digits in words joined by single hyphens, "
        "starting with a letter, at most 64 characters (e.g. loom-store)"
    )


def _package(value: str, answers: Mapping[str, Any]) -> str | None:
    if not PACKAGE.fullmatch(value) or len(value) > 32:
        return (
            "must be a lowercase Python identifier of at most 32 characters: a letter, then "
            "letters, digits or underscores (e.g. loom_store)"
        )
    if keyword.iskeyword(value):
        return "is a Python keyword"
    if value in sys.stdlib_module_names or value in TAKEN_IMPORT_NAMES:
        return "would shadow a module the project imports (standard library or a dependency)"
    return None


def _email(value: str, answers: Mapping[str, Any]) -> str | None:
    return None if EMAIL.fullmatch(value) else "must be an e-mail address like you@example.com"


def _queues(value: str, answers: Mapping[str, Any]) -> str | None:
    names = queue_names(value)
    malformed = [name for name in names if not QUEUE.fullmatch(name)]
    if malformed:
        return (
            "must be comma-separated queue names of lowercase letters, digits, '_' and '-'; "
            f"not {', '.join(repr(name) for name in malformed)}"
        )
    if len(set(names)) != len(names):
        return "names a queue twice"
    unrouted = [f"{job} needs {queue!r}" for job, queue in JOB_QUEUES.items() if queue not in names]
    if unrouted:
        return f"must include every job's queue: {'; '.join(unrouted)}"
    return None


def _default_queue(value: str, answers: Mapping[str, Any]) -> str | None:
    queues = queue_names(str(answers.get("queues", "")))
    return None if value in queues else f"must be one of the queues ({', '.join(queues)})"


def _one_of(choices: tuple[str, ...]) -> Rule:
    def problem(value: str, answers: Mapping[str, Any]) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"

    return problem


RULES: dict[str, Rule] = {
    "project_name": _one_line,
    "project_slug": _slug,
    "package_name": _package,
    "author_name": _one_line,
    "author_email": _email,
    "queues": _queues,
    "default_queue": _default_queue,
    **{option: _one_of(choices) for option, choices in CHOICES.items()},
}


def problems_in(answers: Mapping[str, Any]) -> list[str]:
    """One line per broken rule: the option, the value given, and the rule."""
    problems = []
    for option, rule in RULES.items():
        value = str(answers.get(option, ""))
        problem = rule(value, answers)
        if problem is not None:
            problems.append(f"{option}={value!r}: {problem}")
    return problems


def config_file_option(argv: Sequence[str]) -> str | None:
    """The ``--config-file`` on cookiecutter's command line, if it was given one."""
    for index, argument in enumerate(argv):
        if argument == "--config-file" and index + 1 < len(argv):
            return argv[index + 1]
        if argument.startswith("--config-file="):
            return argument.partition("=")[2]
    return None


def cookiecutter_config_file() -> Path | None:
    """The configuration file the cookiecutter running this hook was given, read off its
    command line (Linux's /proc; elsewhere, none): its ``replay_dir`` is where the answers
    went."""
    proc = Path("/proc") / str(os.getppid())
    try:
        argv = [part.decode() for part in (proc / "cmdline").read_bytes().split(b"\0") if part]
        given = config_file_option(argv)
        return None if given is None else (proc / "cwd").resolve() / given
    except (OSError, UnicodeDecodeError):
        return None


def replay_dir(config_file: Path | None) -> Path:
    """cookiecutter's replay folder, as its configuration (or its default) says."""
    try:
        from cookiecutter.config import get_user_config

        config = get_user_config(config_file=None if config_file is None else str(config_file))
        return Path(config["replay_dir"]).expanduser()
    except Exception:  # an unreadable configuration: cookiecutter's own default
        return Path("~/.cookiecutter_replay").expanduser()


def saved_answers(folder: Path, answers: Mapping[str, Any]) -> Path | None:
    """The replay file cookiecutter wrote for this bake just before the hooks ran, named
    after the template's folder."""
    saved = folder / f"{Path(str(answers.get('_repo_dir', ''))).name}.json"
    return saved if saved.is_file() else None


def rerun_hint(answers: Mapping[str, Any], saved_file: Path | None) -> str:
    """Where cookiecutter saved these answers, and how to bake again from them."""
    template = str(answers.get("_template", "<template>"))
    saved = str(saved_file) if saved_file else "the file cookiecutter's --replay saves"
    return (
        f"Your answers are saved in {saved}: fix them there, then run: "
        f"cookiecutter --replay-file {saved} {template}"
    )


def main() -> int:
    answers = json.loads(ANSWERS_JSON)
    problems = problems_in(answers)
    for problem in problems:
        print(f"ERROR: {problem}", file=sys.stderr)
    if problems:
        saved = saved_answers(replay_dir(cookiecutter_config_file()), answers)
        print(rerun_hint(answers, saved), file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
