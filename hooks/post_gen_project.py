"""Write the stack's .env with fresh random secrets, then say what to do next.

Runs offline: it only writes one file and prints. Cookiecutter renders this file with
Jinja; the answers arrive as one JSON string, and the file stays importable unrendered.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping
from pathlib import Path

ANSWERS_JSON = r"""{{ cookiecutter | tojson }}"""


def env_file(answers: Mapping[str, str]) -> str:
    """The .env that docker-compose reads: every secret random, none reused."""
    package = answers["package_name"]
    return "\n".join(
        [
            "# Made at bake time with random values; never commit it (see .env.example).",
            f"POSTGRES_PASSWORD={secrets.token_urlsafe(24)}",
            f"APP_DB_NAME={package}",
            f"APP_DB_USER={package}",
            f"APP_DB_PASSWORD={secrets.token_urlsafe(24)}",
            f"CURSOR_KEY_K1={base64.b64encode(secrets.token_bytes(32)).decode()}",
            f"FLOWER_BASIC_AUTH=admin:{secrets.token_urlsafe(18)}",
            "",
        ]
    )


def next_steps(answers: Mapping[str, str]) -> str:
    return "\n".join(
        [
            f"Created {answers['project_slug']}. Next:",
            f"  cd {answers['project_slug']}",
            "  make run     # API on http://127.0.0.1:8000/docs, SQLite, jobs in-process",
            "  make up      # the stack: api, worker, flower, postgres, redis (Docker)",
            "  make help    # every other target",
        ]
    )


def main() -> None:
    answers = json.loads(ANSWERS_JSON)
    Path(".env").write_text(env_file(answers))
    print(next_steps(answers))


if __name__ == "__main__":
    main()
