"""A running worker keeps its heartbeat file fresh, which is all its healthcheck reads."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.heartbeat import HEARTBEAT_STALE

from tests.integration.conftest import TIMEOUT, requires_services, running_worker

pytestmark = [requires_services, pytest.mark.usefixtures("api")]  # the API makes the tables


def test_a_running_worker_keeps_touching_its_heartbeat_file(tmp_path: Path) -> None:
    with running_worker(tmp_path / "worker.log") as log:
        heartbeat = log.with_suffix(".heartbeat")
        first = heartbeat.stat().st_mtime
        deadline = time.monotonic() + TIMEOUT
        while heartbeat.stat().st_mtime < first + 1:  # Celery beats every 2 s
            assert time.monotonic() < deadline, "the heartbeat file was touched only once"
            time.sleep(0.2)


def test_a_heartbeat_file_left_by_an_earlier_worker_is_replaced_at_start(tmp_path: Path) -> None:
    left = tmp_path / "worker.heartbeat"
    left.write_text("left by the worker this container ran before")
    long_ago = time.time() - HEARTBEAT_STALE - 1
    os.utime(left, (long_ago, long_ago))

    with running_worker(tmp_path / "worker.log"):
        assert left.read_text() == ""  # touching keeps a file's content: this one is new
