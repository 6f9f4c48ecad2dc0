"""``make new-job NAME=RecalculatePrices [QUEUE=analytics] [EVERY=10m]``: add a working job.

Writes the job module and its test from the Jinja templates in ``templates/`` and adds the
job to config/jobs.yaml, config/base.yaml's discovery list and, with EVERY, to
config/schedule.yaml. YAML goes through ruamel.yaml's round trip so every comment stays;
manifest.py and worker_main.py list the ``jobs`` package themselves, so no Python file is
ever edited. Every check runs before the first write: a refusal is one line on stderr,
exit status 2, and nothing changed.
"""

from __future__ import annotations

import argparse
import ast
import io
import keyword
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from {{ cookiecutter.package_name }}.schedule import parse_interval

PACKAGE = "{{ cookiecutter.package_name }}"
ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = Path(__file__).resolve().parent / "templates"

CAMEL_CASE = re.compile(r"[A-Z][A-Za-z0-9]*")
# Word boundaries inside CamelCase, acronyms kept together: SyncERPPrices -> sync_erp_prices.
WORD_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
EXIT_REFUSED = 2


class Refusal(Exception):
    """A request the scaffold will not carry out; its message is the one line printed."""


@dataclass(frozen=True)
class NewJob:
    name: str
    queue: str
    every: str | None

    @property
    def job_class(self) -> str:
        return f"{self.name}Job"

    @property
    def command_class(self) -> str:
        return f"{self.name}Command"

    @property
    def words(self) -> list[str]:
        return [word.lower() for word in WORD_BOUNDARY.split(self.name)]

    @property
    def module(self) -> str:
        return "_".join(self.words)

    @property
    def schedule_key(self) -> str:
        return "-".join(self.words)

    def template_values(self) -> dict[str, Any]:
        sentence = " ".join(self.words)
        return {
            "package": PACKAGE,
            "job_class": self.job_class,
            "command_class": self.command_class,
            "module": self.module,
            "queue": self.queue,
            "every": self.every,
            "schedule_key": self.schedule_key,
            "words": sentence,
            "sentence": sentence[:1].upper() + sentence[1:],
        }


def round_trip_yaml() -> YAML:
    yaml = YAML()  # round trip: comments, order and quoting survive a load and dump
    yaml.preserve_quotes = True  # a quoted value (queue: "default") stays quoted
    yaml.indent(mapping=2, sequence=4, offset=2)  # the layout config/*.yaml is written in
    yaml.width = 100
    return yaml


def load_yaml(path: Path) -> Any:
    return round_trip_yaml().load(path.read_text())


def dump_yaml(data: Any) -> str:
    out = io.StringIO()
    round_trip_yaml().dump(data, out)
    return out.getvalue()


def requested_job(name: str, queue: str | None, every: str | None, root: Path) -> NewJob:
    """The job asked for, or a Refusal naming the first thing wrong with it."""
    base = name.removesuffix("Job") or name  # NAME=RecalculatePricesJob is RecalculatePrices
    if not CAMEL_CASE.fullmatch(base) or not any(char.islower() for char in base):
        raise Refusal(f"NAME={name!r}: must be CamelCase, like RecalculatePrices")
    job = NewJob(name=base, queue="", every=every)
    for word in (base, job.module):  # the class name, then its module's
        if keyword.iskeyword(word):
            raise Refusal(f"NAME={name!r}: {word!r} is a Python keyword")
    taken = job_classes(root / "src" / PACKAGE)
    if job.job_class in taken:
        raise Refusal(f"NAME={name!r}: {job.job_class} already exists in {taken[job.job_class]}")
    for path in (module_path(job), job_test_path(job)):
        if (root / path).exists():
            raise Refusal(f"NAME={name!r}: {path} already exists")
    celery = load_yaml(root / "config" / "celery.yaml")["celery"]
    queues = [str(known) for known in celery["queues"]]
    chosen = queue or str(celery["task_default_queue"])
    if chosen not in queues:
        raise Refusal(f"QUEUE={chosen!r}: not one of the celery queues ({', '.join(queues)})")
    if every is not None:
        try:
            parse_interval(every)  # the rule beat applies, so a scheduled job always starts
        except ValueError as problem:
            raise Refusal(f"EVERY={every!r}: {problem}") from None
    return NewJob(name=base, queue=chosen, every=every)


def job_classes(source: Path) -> dict[str, str]:
    """Class names ending in Job defined anywhere under ``source``, with their file."""
    found: dict[str, str] = {}
    for path in sorted(source.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ClassDef) and node.name.endswith("Job"):
                found.setdefault(node.name, str(path.relative_to(source.parents[1])))
    return found


def module_path(job: NewJob) -> Path:
    return Path("src") / PACKAGE / "jobs" / f"{job.module}.py"


def job_test_path(job: NewJob) -> Path:
    return Path("tests") / f"test_job_{job.module}.py"


def rendered(template: str, job: NewJob) -> str:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # Python source, not HTML
    )
    return environment.get_template(template).render(job.template_values())


def with_job_settings(job: NewJob, root: Path) -> str:
    """config/jobs.yaml with the job's routing added after the existing entries."""
    document = load_yaml(root / "config" / "jobs.yaml")
    jobs: CommentedMap = document["jobs"]
    settings = CommentedMap(queue=job.queue, retries=1, timeout=30)
    settings.yaml_add_eol_comment("seconds; soft time limit", "timeout")
    jobs[job.job_class] = settings
    jobs.yaml_set_comment_before_after_key(
        job.job_class,
        before="\nAdded by `make new-job`: one retry, 30 s; set what the work needs.",
        indent=2,
    )
    return dump_yaml(document)


def with_discovered_module(job: NewJob, root: Path) -> str:
    """config/base.yaml with the job's module in the modules discovery list."""
    document = load_yaml(root / "config" / "base.yaml")
    document["app"]["discovery"]["modules"]["include"].append(f"{PACKAGE}.jobs.{job.module}")
    return dump_yaml(document)


def with_schedule_entry(job: NewJob, every: str, root: Path) -> str:
    """config/schedule.yaml with the job to run every ``every``, on an empty payload."""
    path = root / "config" / "schedule.yaml"
    document = load_yaml(path)
    schedule: CommentedMap = document["schedule"]
    if job.schedule_key in schedule:
        raise Refusal(f"NAME={job.name!r}: {job.schedule_key!r} is already in {path.name}")
    schedule.fa.set_block_style()  # `schedule: {}` grows into a block mapping
    schedule[job.schedule_key] = CommentedMap(job=job.job_class, every=every, payload={})
    return dump_yaml(document)


def planned_files(job: NewJob, root: Path) -> dict[Path, str]:
    """Every file the job adds or changes, with its new text; nothing is written yet."""
    files = {
        module_path(job): rendered("job.py.jinja", job),
        job_test_path(job): rendered("test_job.py.jinja", job),
        Path("config") / "jobs.yaml": with_job_settings(job, root),
        Path("config") / "base.yaml": with_discovered_module(job, root),
    }
    if job.every is not None:
        files[Path("config") / "schedule.yaml"] = with_schedule_entry(job, job.every, root)
    return files


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make new-job", description=__doc__)
    parser.add_argument("--name", required=True, help="CamelCase, e.g. RecalculatePrices")
    # Empty strings are what make passes for QUEUE= and EVERY= left unset.
    parser.add_argument("--queue", default="", help="a celery queue; default: the default queue")
    parser.add_argument("--every", default="", help="also run periodically: 30s, 10m, 2h, 1d")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, root: Path = ROOT) -> int:
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    try:
        job = requested_job(arguments.name, arguments.queue or None, arguments.every or None, root)
        files = planned_files(job, root)
    except Refusal as refusal:
        print(f"new-job: {refusal}", file=sys.stderr)
        return EXIT_REFUSED
    for relative, text in files.items():
        (root / relative).write_text(text)
        print(f"wrote {relative}")
    print(f"{job.job_class} is registered for every worker bootstrap; run `make check`.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
