"""Commands these tests hand to baked projects: their uv, their token."""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest


def uv_executable() -> str:
    """The uv the Makefile chose (it exports UV), else the one on PATH."""
    found = os.environ.get("UV") or shutil.which("uv")
    if not found:
        pytest.fail("uv not found: run the tests with `make test`, which installs it")
    return found


@cache
def bearer_token(project: Path) -> str:
    """A writer's bearer token (15 minutes) from the project's own ``make token``."""
    made = subprocess.run(
        ["make", "-s", "-C", str(project), "token", f"UV={uv_executable()}"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()
