"""config/schedule.yaml: what beat refuses, in one line per problem, and what it sends."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from celery import Celery
from loom.core.identity.wire import decode_identity

from {{ cookiecutter.package_name }}.product.jobs import LowStockSweepJob
from {{ cookiecutter.package_name }}.schedule import (
    ScheduledJob,
    configure_beat,
    load_schedule,
    schedule_problems,
)
from {{ cookiecutter.package_name }}.setting_error import SettingError

from tests.conftest import PROJECT_ROOT

CONFIG = PROJECT_ROOT / "config"
BEAT_MAIN = "{{ cookiecutter.package_name }}.beat_main"
SCHEDULER = "{{ cookiecutter.package_name }}.schedule:HeartbeatScheduler"
SWEEP_QUEUE = "{{ cookiecutter.default_queue }}"  # config/jobs.yaml


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A config directory holding the project's base.yaml (its discovery names the jobs)."""
    directory = tmp_path / "config"
    directory.mkdir()
    shutil.copy(CONFIG / "base.yaml", directory)
    return directory


def with_schedule(config_dir: Path, entries: str) -> Path:
    (config_dir / "schedule.yaml").write_text("schedule:\n" + entries)
    return config_dir


def test_shipped_schedule_has_no_problems() -> None:
    assert schedule_problems(CONFIG) == []


def shipped_sweep() -> ScheduledJob:
    """The entry the template ships; `make new-job ... EVERY=` adds others beside it."""
    (entry,) = [entry for entry in load_schedule(CONFIG) if entry.name == "low-stock-sweep"]
    return entry


def test_shipped_schedule_sweeps_low_stock_every_fifteen_minutes() -> None:
    entry = shipped_sweep()

    assert entry.job is LowStockSweepJob
    assert entry.beat_entry()["schedule"].run_every.total_seconds() == 15 * 60


def test_interval_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOW_STOCK_SWEEP_EVERY", "2s")

    entry = shipped_sweep()

    assert entry.beat_entry()["schedule"].run_every.total_seconds() == 2


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        (
            "  sweep:\n    job: NoSuchJob\n    every: 10m\n",
            "schedule.yaml: sweep: job 'NoSuchJob' names no Job class; known: ",
        ),
        (
            "  sweep:\n    every: 10m\n",
            "schedule.yaml: sweep: job is missing; known: ",
        ),
        (
            "  sweep:\n    job: LowStockSweepJob\n    crontab: '61 * * * *'\n",
            "schedule.yaml: sweep: crontab '61 * * * *' is invalid: ",
        ),
        (
            "  sweep:\n    job: LowStockSweepJob\n    crontab: '*/5 * *'\n",
            "schedule.yaml: sweep: crontab '*/5 * *' is invalid: must have five fields",
        ),
        (
            "  sweep:\n    job: LowStockSweepJob\n    every: 10 minutes\n",
            "schedule.yaml: sweep: every '10 minutes' must be a positive whole number",
        ),
        (
            "  sweep:\n    job: LowStockSweepJob\n    every: 0s\n",
            "schedule.yaml: sweep: every '0s' must be a positive whole number",
        ),
        (
            "  sweep:\n    job: LowStockSweepJob\n    every: 10m\n    crontab: '* * * * *'\n",
            "schedule.yaml: sweep: give exactly one of every (like 10m) and crontab",
        ),
        (
            "  sweep:\n    job: LowStockSweepJob\n",
            "schedule.yaml: sweep: give exactly one of every (like 10m) and crontab",
        ),
        (
            "  Low_Stock:\n    job: LowStockSweepJob\n    every: 10m\n",
            "schedule.yaml: Low_Stock: the name must be kebab-case",
        ),
        (
            "  sweep:\n    job: LowStockSweepJob\n    every: 10m\n    payload: [1]\n",
            "schedule.yaml: sweep: payload must be a mapping",
        ),
        (
            "  sweep:\n    job: LowStockSweepJob\n    every: 10m\n    queue: erp\n",
            "schedule.yaml: sweep: unknown key 'queue'",
        ),
    ],
    ids=[
        "unknown-job",
        "job-missing",
        "crontab-out-of-range",
        "crontab-too-few-fields",
        "interval-in-words",
        "interval-zero",
        "both-every-and-crontab",
        "neither-every-nor-crontab",
        "name-not-kebab-case",
        "payload-not-a-mapping",
        "unknown-key",
    ],
)
def test_each_bad_entry_is_one_problem_line(config_dir: Path, entries: str, problem: str) -> None:
    (found,) = schedule_problems(with_schedule(config_dir, entries))

    assert found.startswith(problem)
    assert "\n" not in found


def test_every_bad_entry_is_reported_not_only_the_first(config_dir: Path) -> None:
    entries = (
        "  one:\n    job: NoSuchJob\n    every: 10m\n"
        "  two:\n    job: LowStockSweepJob\n    every: soon\n"
    )

    problems = schedule_problems(with_schedule(config_dir, entries))

    assert [problem.split(":")[1].strip() for problem in problems] == ["one", "two"]


def test_missing_schedule_section_is_one_problem(config_dir: Path) -> None:
    (config_dir / "schedule.yaml").write_text("jobs: {}\n")

    assert schedule_problems(config_dir) == [
        "schedule.yaml: must hold a `schedule:` mapping of named entries"
    ]


def test_crontab_entry_is_accepted(config_dir: Path) -> None:
    entries = "  nightly:\n    job: LowStockSweepJob\n    crontab: '30 2 * * *'\n    payload: {}\n"

    (entry,) = load_schedule(with_schedule(config_dir, entries))

    assert entry.beat_entry()["schedule"].hour == {2}
    assert "expires" not in entry.beat_entry()["options"]


def test_beat_sends_loom_job_task_with_the_schedule_as_caller() -> None:
    entry = shipped_sweep()

    sent = entry.beat_entry()

    assert sent["task"] == "loom.job.LowStockSweepJob"
    assert set(sent["kwargs"]) == {"payload", "params", "trace_id", "identity"}
    caller = decode_identity(sent["kwargs"]["identity"])
    assert caller is not None
    assert caller.subject == "schedule:low-stock-sweep"
    # A sweep still queued when the next one is due is dropped, not run twice in a row.
    assert sent["options"]["expires"] == 15 * 60


def test_configure_beat_refuses_a_bad_schedule_in_one_line(config_dir: Path) -> None:
    entries = "  a:\n    job: NoSuchJob\n    every: 1m\n  b:\n    job: LowStockSweepJob\n"

    with pytest.raises(SettingError) as refused:
        configure_beat(Celery(), with_schedule(config_dir, entries))

    assert "\n" not in str(refused.value)
    assert str(refused.value).count("schedule.yaml:") == 2


def test_beat_entry_point_stops_with_one_error_line_on_a_bad_interval() -> None:
    env = os.environ | {
        "LOW_STOCK_SWEEP_EVERY": "7x",
        "CELERY_BROKER_URL": "memory://",
        "CELERY_RESULT_BACKEND": "cache+memory://",
    }

    started = subprocess.run(
        [sys.executable, "-c", f"import {BEAT_MAIN}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert started.returncode == 1
    assert started.stderr.strip().splitlines()[-1] == (
        "ERROR: schedule.yaml: low-stock-sweep: every '7x' must be a positive whole number "
        "and a unit s, m, h or d, like 30s or 10m"
    )


def test_beat_entry_point_gives_the_worker_app_the_schedule() -> None:
    # A fresh interpreter, as `celery -A ...beat_main:celery_app beat` starts one.
    env = os.environ | {
        "CELERY_BROKER_URL": "memory://",
        "CELERY_RESULT_BACKEND": "cache+memory://",
    }
    show = (
        f"import json; from {BEAT_MAIN} import celery_app as app; "
        "print(json.dumps({'scheduler': app.conf.beat_scheduler, 'queues': "
        "{name: entry['options']['queue'] for name, entry in app.conf.beat_schedule.items()}}))"
    )

    started = subprocess.run(
        [sys.executable, "-c", show],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert started.returncode == 0, started.stderr
    shown = json.loads(started.stdout.splitlines()[-1])
    assert shown["scheduler"] == SCHEDULER
    assert set(shown["queues"]) == {entry.name for entry in load_schedule(CONFIG)}
    # config/jobs.yaml routes the sweep; beat sends it there, as a dispatch would.
    assert shown["queues"]["low-stock-sweep"] == SWEEP_QUEUE
