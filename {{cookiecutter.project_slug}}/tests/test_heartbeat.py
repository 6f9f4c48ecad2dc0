"""The healthcheck of beat and the workers: fresh while the file keeps being touched."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.heartbeat import HEARTBEAT_STALE, main


@pytest.fixture
def heartbeat(tmp_path: Path) -> Path:
    return tmp_path / "worker.heartbeat"


def test_no_heartbeat_file_yet_is_not_alive(heartbeat: Path) -> None:
    assert main([str(heartbeat)]) == 1


def test_a_heartbeat_just_touched_is_alive(heartbeat: Path) -> None:
    heartbeat.touch()

    assert main([str(heartbeat)]) == 0


def test_a_heartbeat_older_than_the_stale_limit_is_not_alive(heartbeat: Path) -> None:
    stale = time.time() - HEARTBEAT_STALE - 1
    heartbeat.touch()
    os.utime(heartbeat, (stale, stale))

    assert main([str(heartbeat)]) == 1


# The healthcheck as a container runs it, reporting its exit code and what it imported.
IMPORTS_PROBE = """
import runpy, sys
sys.argv = ["heartbeat", sys.argv[1]]
try:
    runpy.run_module("{{ cookiecutter.package_name }}.heartbeat", run_name="__main__")
except SystemExit as done:
    print(done.code, [name for name in sys.modules if name.split(".")[0] in ("celery", "loom")])
"""


def test_the_healthcheck_imports_neither_celery_nor_loom(heartbeat: Path) -> None:
    # It runs every 15-30 s in every container; importing them costs a second of CPU.
    heartbeat.touch()
    checked = subprocess.run(
        [sys.executable, "-c", IMPORTS_PROBE, str(heartbeat)],
        capture_output=True,
        text=True,
        check=True,
    )

    assert checked.stdout.split() == ["0", "[]"]
