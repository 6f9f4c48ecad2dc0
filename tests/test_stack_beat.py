"""Periodic jobs in the generated stack: its compose services as local processes (beat
among them) against this machine's PostgreSQL and a private Redis, with the low-stock sweep
every 2 s instead of 15 min."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.flows import JOB_TIMEOUT, category_becomes, new_product
from tests.stack import PG_ADMIN, PG_HOST, PG_PORT, Stack, json_log, running_stack, wait_for

# The worker serves the sweep and the callbacks (default) and the emails (notifications).
WORKER_QUEUES = "default,notifications"
SWEEP_EVERY = "2s"
RECIPIENT = "stock-room@example.com"
SWEEP_LOGGED = "low-stock sweep"
NOTIFIED = "kitchen-restock-notified"


@pytest.fixture(scope="module")
def stack(default_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # Beat's state from another run would carry that run's last-run times.
    shutil.rmtree(default_project / "beat-state", ignore_errors=True)
    shell = {"LOW_STOCK_SWEEP_EVERY": SWEEP_EVERY, "RESTOCK_EMAIL_TO": RECIPIENT}
    with running_stack(
        default_project, tmp_path_factory.mktemp("logs"), WORKER_QUEUES, shell
    ) as running:
        yield running


def query(stack: Stack, sql: str) -> list[tuple[Any, ...]]:
    """Rows of the stack's own database, read as the PostgreSQL administrator."""
    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_ADMIN, dbname=stack.database, connect_timeout=3
    ) as connection:
        return connection.execute(sql).fetchall()


def sweeps_run(stack: Stack) -> int:
    return stack.log("worker").count(SWEEP_LOGGED)


def emails(stack: Stack) -> list[tuple[Any, ...]]:
    return query(stack, "SELECT product_id, recipient_email FROM restock_notifications")


def test_compose_runs_exactly_one_beat(stack: Stack) -> None:
    beats = [name for name, service in stack.services.items() if "beat" in service.command]

    assert beats == ["beat"]


def test_beat_runs_the_sweep_on_its_interval(stack: Stack) -> None:
    wait_for(lambda: sweeps_run(stack) >= 2, "beat to start the sweep twice", timeout=JOB_TIMEOUT)


def test_sweeps_email_each_empty_product_once_and_tag_it_through_the_api(
    api: httpx.Client, stack: Stack
) -> None:
    empty = new_product(api, stock=0)
    stocked = new_product(api, stock=5)
    before = sweeps_run(stack)

    category_becomes(api, empty, NOTIFIED)
    wait_for(lambda: sweeps_run(stack) >= before + 3, "three more sweeps", timeout=JOB_TIMEOUT)

    assert [row for row in emails(stack) if row[0] == empty] == [(empty, RECIPIENT)]
    assert not [row for row in emails(stack) if row[0] == stocked]
    assert api.get(f"/products/{stocked}").json()["category"] == "kitchen"


def test_sweep_dispatches_go_through_the_outbox_and_are_all_published(
    api: httpx.Client, stack: Stack
) -> None:
    empty = new_product(api, stock=0)
    category_becomes(api, empty, NOTIFIED)
    before = sweeps_run(stack)
    wait_for(lambda: sweeps_run(stack) >= before + 2, "two more sweeps", timeout=JOB_TIMEOUT)

    def recorded() -> list[tuple[Any, ...]]:
        return query(
            stack,
            "SELECT sent_at FROM outbox WHERE task_name = 'loom.job.SendRestockEmailJob' "
            f"AND message->'kwargs'->'payload'->>'product_id' = '{empty}'",
        )

    # One row per sweep that saw the product, each published: the email itself went once.
    wait_for(lambda: len(recorded()) >= 2, "the sweeps' dispatches in the outbox", 10)
    wait_for(
        lambda: all(sent_at is not None for (sent_at,) in recorded()),
        "every outbox row of the sweeps to be published",
        timeout=10,
    )
    assert len([row for row in emails(stack) if row[0] == empty]) == 1


def test_the_schedule_is_the_caller_in_the_jobs_log(api: httpx.Client, stack: Stack) -> None:
    empty = new_product(api, stock=0)

    def logged_with_the_schedule(record: dict[str, Any]) -> bool:
        caller = record.get("caller")
        return record.get("product_id") == empty and caller == "schedule:low-stock-sweep"

    wait_for(
        lambda: any(logged_with_the_schedule(record) for record in json_log(stack, "worker")),
        "a restock email asked for by the schedule",
        timeout=JOB_TIMEOUT,
    )


def test_beat_passes_its_heartbeat_healthcheck(stack: Stack) -> None:
    assert stack.healthy("beat")
