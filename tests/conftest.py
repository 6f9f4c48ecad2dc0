"""Bake projects through cookiecutter's Python API and run their own tooling."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parents[1]
Bake = Callable[..., Path]


def uv_executable() -> str:
    """The uv the Makefile chose (it exports UV), else the one on PATH."""
    found = os.environ.get("UV") or shutil.which("uv")
    if not found:
        pytest.fail("uv not found: run the tests with `make test`, which installs it")
    return found


def run_make(
    project: Path, *targets: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run the baked project's own Makefile, with the uv these tests use."""
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(project), *targets, f"UV={uv_executable()}"],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def bake(tmp_path: Path) -> Bake:
    """Bake the template with the given answers into a fresh directory; return the project."""

    def bake_with(**answers: Any) -> Path:
        return Path(
            cookiecutter(
                str(TEMPLATE), no_input=True, output_dir=str(tmp_path), extra_context=answers
            )
        )

    return bake_with


@pytest.fixture(scope="session")
def default_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default bake, installed once (``make install``) and shared by the slow tests."""
    output = tmp_path_factory.mktemp("default")
    project = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(output)))
    result = run_make(project, "install")
    assert result.returncode == 0, result.stdout + result.stderr
    return project
