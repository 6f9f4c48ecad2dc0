"""The transactional outbox on SQLite, with kombu's in-process broker or none reachable.

PostgreSQL, a real broker and a real worker: tests/integration/test_outbox_postgres.py.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kombu import Connection

from {{ cookiecutter.package_name }}.runtime import create_api, create_worker

from tests.conftest import PROJECT_ROOT
from tests.test_loom_fixes import plain_loom_api

PRODUCT = {"sku": "KET-1", "name": "Kettle", "category": "kitchen", "priceCents": 2599, "stock": 0}
EMAIL = {"recipientEmail": "buyer@example.com"}
# Nothing listens on port 1: a broker that is down, refusing at once.
BROKER_DOWN = "redis://127.0.0.1:1/0"


def database_file(tmp_path: Path) -> Path:
    return tmp_path / "test.db"  # conftest's DATABASE_URL


def outbox_rows(tmp_path: Path) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(database_file(tmp_path))) as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute("SELECT * FROM outbox ORDER BY created_at")]


def eventually(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def celery_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOB_RUNTIME", "celery")
    monkeypatch.setenv("CELERY_BROKER_URL", "memory://")
    monkeypatch.setenv("CELERY_RESULT_BACKEND", "cache+memory://")


@pytest.fixture
def broker_down(celery_mode: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELERY_BROKER_URL", BROKER_DOWN)


@pytest.fixture
def api(celery_mode: None) -> Iterator[TestClient]:
    with TestClient(create_api()) as client:
        yield client


def new_product(client: TestClient, **fields: object) -> int:
    response = client.post("/products/", json=PRODUCT | fields)
    assert response.status_code == 201, response.text
    product_id: int = response.json()["id"]
    return product_id


def test_dispatch_is_recorded_under_the_job_id_and_published_after_the_commit(
    api: TestClient, tmp_path: Path
) -> None:
    product_id = new_product(api)

    accepted = api.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL)

    assert accepted.status_code == 202
    (row,) = outbox_rows(tmp_path)
    assert row["id"] == accepted.json()["jobId"]
    assert row["task_name"] == "loom.job.SendRestockEmailJob"
    eventually(lambda: outbox_rows(tmp_path)[0]["sent_at"] is not None, "the row marked sent")
    with Connection("memory://") as connection:
        message = connection.SimpleQueue("notifications").get(timeout=1)
    assert message.headers["id"] == accepted.json()["jobId"]


def test_use_case_that_fails_after_dispatching_records_nothing(
    api: TestClient, tmp_path: Path
) -> None:
    product_id = new_product(api)

    response = api.post("/products/jobs/sync-erp", json={"productIds": [product_id, 999_999]})

    assert response.status_code == 404
    assert outbox_rows(tmp_path) == []


def message_shape(message: Any, product_id: int) -> str:
    """A published message with what differs per dispatch (ids, trace, key) blanked out."""
    _, kwargs, embed = message.decode()
    fields = [
        message.headers["task"],
        message.headers["timelimit"],
        message.headers["eta"],
        message.properties["priority"],
        message.delivery_info["routing_key"],
        kwargs,
        embed,
    ]
    text = json.dumps(fields, sort_keys=True)
    for varying in (
        message.headers["id"],
        kwargs["trace_id"],
        kwargs["payload"]["notification_key"],
    ):
        text = text.replace(varying, "*")
    return text.replace(f'"product_id": {product_id}', '"product_id": *')


def test_outbox_publishes_the_message_loom_itself_would_send(
    celery_mode: None, tmp_path: Path
) -> None:
    with TestClient(plain_loom_api()) as plain:
        product_id = new_product(plain)
        plain.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL)
    with TestClient(create_api()) as client:
        client.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL)

    with Connection("memory://") as connection:
        queue = connection.SimpleQueue("notifications")
        direct, recorded = queue.get(timeout=1), queue.get(timeout=5)

    assert outbox_rows(tmp_path)[0]["id"] == recorded.headers["id"]
    assert message_shape(recorded, product_id) == message_shape(direct, product_id)


def test_with_the_broker_down_a_dispatch_answers_202_at_once_and_stays_pending(
    broker_down: None, tmp_path: Path
) -> None:
    with TestClient(create_api()) as client:
        product_id = new_product(client)
        started = time.monotonic()

        accepted = client.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL)

        assert accepted.status_code == 202
        assert time.monotonic() - started < 1.0
        time.sleep(0.5)  # the attempt right after the commit has failed by now
        health = client.get("/health").json()
    assert health["outbox"]["pending"] == 1
    assert health["outbox"]["oldestPendingSeconds"] > 0
    (row,) = outbox_rows(tmp_path)
    assert row["sent_at"] is None


def test_pending_dispatch_of_a_stopped_api_is_published_when_an_api_starts(
    broker_down: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with TestClient(create_api()) as crashed:
        product_id = new_product(crashed)
        job_id = crashed.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL).json()[
            "jobId"
        ]
    monkeypatch.setenv("CELERY_BROKER_URL", "memory://")

    with TestClient(create_api()):
        eventually(lambda: outbox_rows(tmp_path)[0]["sent_at"] is not None, "the relay")

    with Connection("memory://") as connection:
        assert connection.SimpleQueue("notifications").get(timeout=1).headers["id"] == job_id


def test_sent_rows_past_the_retention_are_pruned_and_pending_ones_kept(
    api: TestClient, tmp_path: Path
) -> None:
    product_id = new_product(api)
    for _ in range(2):
        api.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL)
    eventually(lambda: all(row["sent_at"] for row in outbox_rows(tmp_path)), "both sent")
    old, recent = outbox_rows(tmp_path)
    with closing(sqlite3.connect(database_file(tmp_path))) as db, db:
        db.execute("UPDATE outbox SET sent_at = '2000-01-01 00:00:00' WHERE id = ?", [old["id"]])
        db.execute("UPDATE outbox SET sent_at = NULL WHERE id = ?", [recent["id"]])
    relay = api.app.state.outbox_relay  # type: ignore[attr-defined]

    assert api.portal.call(relay.prune) == 1  # type: ignore[union-attr]

    assert [row["id"] for row in outbox_rows(tmp_path)] == [recent["id"]]


def test_in_process_jobs_use_no_outbox(client: TestClient, tmp_path: Path) -> None:
    product_id = new_product(client)

    client.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL)

    assert client.get(f"/products/{product_id}").json()["category"] == "kitchen-restock-notified"
    assert outbox_rows(tmp_path) == []
    assert "outbox" not in client.get("/health").json()


BAD_SETTINGS = [
    ("OUTBOX_RELAY_INTERVAL", "0", "must be seconds, more than 0 and at most 60"),
    ("OUTBOX_RELAY_INTERVAL", "soon", "must be seconds, more than 0 and at most 60"),
    ("OUTBOX_RELAY_MAX_BACKOFF", "0.5", "must be seconds, at least OUTBOX_RELAY_INTERVAL (1)"),
    ("OUTBOX_RETENTION", "30", "must be whole seconds, at least 60"),
    ("CELERY_VISIBILITY_TIMEOUT", "30", "longer than the longest job's soft time limit plus"),
]


@pytest.mark.parametrize(("name", "value", "rule"), BAD_SETTINGS)
def test_api_refuses_to_start_with_a_bad_setting_in_one_line(
    celery_mode: None, monkeypatch: pytest.MonkeyPatch, name: str, value: str, rule: str
) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(SystemExit) as stopped:
        create_api()

    message = str(stopped.value.code)
    assert message.startswith(f"ERROR: {name}=")
    assert rule in message
    assert "\n" not in message


def test_worker_refuses_a_visibility_timeout_shorter_than_the_slowest_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CELERY_VISIBILITY_TIMEOUT", "30")

    with pytest.raises(SystemExit) as stopped:
        create_worker()

    assert str(stopped.value.code) == (
        "ERROR: CELERY_VISIBILITY_TIMEOUT=30: must be whole seconds longer than the longest "
        "job's soft time limit plus its countdown (SendRestockEmailJob: 30 s + 0 s)"
    )


def test_the_outbox_table_is_in_the_migrations() -> None:
    versions = (PROJECT_ROOT / "alembic" / "versions").glob("*.py")
    assert any('"outbox"' in path.read_text() for path in versions)
