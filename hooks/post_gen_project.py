"""Shape the generated project to the answers, write its .env, say what to do next.

Runs offline: it removes files, writes one and prints. Cookiecutter renders this file
with Jinja; the answers arrive as one JSON string, and the file stays importable
unrendered.
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path

ANSWERS_JSON = r"""{{ cookiecutter | tojson }}"""


# The files an answer removes. This is the only place options add or remove whole files;
# smaller differences (a compose service, a config value) are Jinja conditions in the
# files themselves.
REMOVED_WHEN: dict[tuple[str, str], tuple[str, ...]] = {
    ("ci", "none"): (".github",),
    ("open_source_license", "none"): ("LICENSE",),
    ("use_flower", "no"): ("deploy/kubernetes/base/flower.yaml",),
}


def paths_to_remove(answers: Mapping[str, str]) -> list[str]:
    return [
        path
        for (option, value), paths in REMOVED_WHEN.items()
        if answers.get(option) == value
        for path in paths
    ]


def remove(project: Path, relative: str) -> None:
    target = project / relative
    if target.is_dir():
        shutil.rmtree(target)
    else:
        target.unlink()


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
            f"JWT_SECRET={secrets.token_urlsafe(48)}",
            f"REDIS_PASSWORD={secrets.token_urlsafe(24)}",
            *(
                [
                    f"RABBITMQ_DEFAULT_USER={package}",
                    f"RABBITMQ_DEFAULT_PASS={secrets.token_urlsafe(24)}",
                    f"RABBITMQ_DEFAULT_VHOST={package}",
                ]
                if answers.get("broker") == "rabbitmq"
                else []
            ),
            *(
                [f"FLOWER_BASIC_AUTH=admin:{secrets.token_urlsafe(18)}"]
                if answers.get("use_flower") == "yes"
                else []
            ),
            "",
        ]
    )


def recorded_answers(answers: Mapping[str, str]) -> str:
    """The answers in cookiecutter's replay format: ``--replay-file`` bakes the same project,
    and ``cruft link`` attaches a project baked without cruft to later template updates."""
    public = {key: value for key, value in answers.items() if not key.startswith("_")}
    return json.dumps({"cookiecutter": public}, indent=2, sort_keys=True) + "\n"


def next_steps(answers: Mapping[str, str]) -> str:
    return "\n".join(
        [
            f"Created {answers['project_slug']}. Next:",
            f"  cd {answers['project_slug']}",
            "  make run     # API on http://127.0.0.1:8000/docs, SQLite, jobs in-process",
            "  make up      # the compose stack (Docker)",
            "  make help    # every other target",
        ]
    )


def main() -> None:
    answers = json.loads(ANSWERS_JSON)
    project = Path.cwd()
    for relative in paths_to_remove(answers):
        remove(project, relative)
    secrets_file = project / ".env"
    secrets_file.touch(mode=0o600)  # made private before a secret is written to it
    secrets_file.write_text(env_file(answers))
    (project / ".cookiecutter-answers.json").write_text(recorded_answers(answers))
    print(next_steps(answers))


if __name__ == "__main__":
    main()
