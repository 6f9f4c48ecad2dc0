"""Beat's healthcheck: fresh while the scheduler keeps touching its heartbeat file."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.beat_heartbeat import HEARTBEAT_STALE, heartbeat_file, main


@pytest.fixture
def state(tmp_path: Path) -> str:
    return str(tmp_path / "schedule")


def test_no_heartbeat_file_yet_is_not_alive(state: str) -> None:
    assert main([state]) == 1


def test_a_heartbeat_just_touched_is_alive(state: str) -> None:
    heartbeat_file(state).touch()

    assert main([state]) == 0


def test_a_heartbeat_older_than_the_stale_limit_is_not_alive(state: str) -> None:
    stale = time.time() - HEARTBEAT_STALE - 1
    heartbeat_file(state).touch()
    os.utime(heartbeat_file(state), (stale, stale))

    assert main([state]) == 1
