"""Commands these tests hand to baked projects: their uv, their token."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parents[1]


def bake_project(output_dir: Path, **answers: str) -> Path:
    """Bake the template with ``answers`` into ``output_dir``; return the project."""
    return Path(
        cookiecutter(
            str(TEMPLATE), no_input=True, output_dir=str(output_dir), extra_context=answers
        )
    )


def uv_executable() -> str:
    """The uv the Makefile chose (it exports UV), else the one on PATH."""
    found = os.environ.get("UV") or shutil.which("uv")
    if not found:
        pytest.fail("uv not found: run the tests with `make test`, which installs it")
    return found


# The project's tokens live 15 minutes; a run is longer, so one is made again after 8:
# a test that starts with the oldest still has 7 minutes.
TOKEN_REUSE_SECONDS = 480.0
_tokens: dict[Path, tuple[str, float]] = {}


def bearer_token(project: Path) -> str:
    """A writer's bearer token from the project's own ``make token``, fresh enough to
    outlive the test that asks for it."""
    kept = _tokens.get(project)
    # No "made at 0" default: the monotonic clock counts from boot, so on a machine up for
    # less than TOKEN_REUSE_SECONDS an empty token would look fresh.
    if kept is None or time.monotonic() - kept[1] > TOKEN_REUSE_SECONDS:
        made = subprocess.run(
            ["make", "-s", "-C", str(project), "token", f"UV={uv_executable()}"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert made.returncode == 0, made.stderr
        kept = made.stdout.strip(), time.monotonic()
        _tokens[project] = kept
    return kept[0]
