"""Say what to do next. Runs offline: it only prints."""

from __future__ import annotations

import json

ANSWERS_JSON = r"""{{ cookiecutter | tojson }}"""


def next_steps(answers: dict[str, str]) -> str:
    return "\n".join(
        [
            f"Created {answers['project_slug']}. Next:",
            f"  cd {answers['project_slug']}",
            "  make run     # API on http://127.0.0.1:8000/docs, SQLite, jobs in-process",
            "  make test    # the project's own tests",
            "  make help    # every other target",
        ]
    )


if __name__ == "__main__":
    print(next_steps(json.loads(ANSWERS_JSON)))
