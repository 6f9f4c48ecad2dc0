"""Refuse a bake whose answers would make a broken project, before any file is written.

Cookiecutter renders this file with Jinja, then runs it. The answers arrive as one JSON
string, never as code, and the file stays valid Python unrendered so the tests can
import ``problems_in`` and check every rule directly.
"""

from __future__ import annotations

import json
import keyword
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any

ANSWERS_JSON = r"""{{ cookiecutter | tojson }}"""

SLUG = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
PACKAGE = re.compile(r"[a-z][a-z0-9_]*")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
CHOICES = {
    "python_version": ("3.11", "3.12", "3.13"),
    "worker_bootstrap": ("modules", "manifest", "explicit"),
}
# Import names the generated project already uses: a package named like one would shadow it.
TAKEN_IMPORT_NAMES = frozenset(
    {"alembic", "celery", "fastapi", "kombu", "loom", "msgspec", "sqlalchemy", "tests", "uvicorn"}
)


def _slug_problem(value: str) -> str | None:
    if SLUG.fullmatch(value) and len(value) <= 64:
        return None
    return (
        "must be lowercase letters and digits in words joined by single hyphens, "
        "starting with a letter, at most 64 characters (e.g. loom-store)"
    )


def _package_problem(value: str) -> str | None:
    if not PACKAGE.fullmatch(value):
        return (
            "must be a lowercase Python identifier: a letter, then letters, digits or "
            "underscores (e.g. loom_store)"
        )
    if keyword.iskeyword(value):
        return "is a Python keyword"
    if value in sys.stdlib_module_names or value in TAKEN_IMPORT_NAMES:
        return "would shadow a module the project imports (standard library or a dependency)"
    return None


def _email_problem(value: str) -> str | None:
    return None if EMAIL.fullmatch(value) else "must be an e-mail address like you@example.com"


def _one_of(choices: tuple[str, ...]) -> Callable[[str], str | None]:
    def problem(value: str) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"

    return problem


def _name_problem(value: str) -> str | None:
    return None if value.strip() and "\n" not in value else "must be one non-empty line"


RULES: dict[str, Callable[[str], str | None]] = {
    "project_name": _name_problem,
    "project_slug": _slug_problem,
    "package_name": _package_problem,
    "author_email": _email_problem,
    **{option: _one_of(choices) for option, choices in CHOICES.items()},
}


def problems_in(answers: Mapping[str, Any]) -> list[str]:
    """One line per broken rule: the option, the value given, and the rule."""
    problems = []
    for option, rule in RULES.items():
        value = str(answers.get(option, ""))
        problem = rule(value)
        if problem is not None:
            problems.append(f"{option}={value!r}: {problem}")
    return problems


def main() -> int:
    problems = problems_in(json.loads(ANSWERS_JSON))
    for problem in problems:
        print(f"ERROR: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
