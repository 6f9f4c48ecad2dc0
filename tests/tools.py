"""The uv every bake in these tests installs with."""

from __future__ import annotations

import os
import shutil

import pytest


def uv_executable() -> str:
    """The uv the Makefile chose (it exports UV), else the one on PATH."""
    found = os.environ.get("UV") or shutil.which("uv")
    if not found:
        pytest.fail("uv not found: run the tests with `make test`, which installs it")
    return found
