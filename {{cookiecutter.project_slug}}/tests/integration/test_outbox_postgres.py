"""The outbox on PostgreSQL with Redis: row locking between relays, and a message
delivered twice to a real worker changing nothing."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
import redis
from celery import Celery
from fastapi.testclient import TestClient
from loom.core.repository.sqlalchemy.session_manager import SessionManager
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from {{ cookiecutter.package_name }}.outbox import relay as relay_module
from {{ cookiecutter.package_name }}.outbox.relay import (
    FAST_PATH_GRACE,
    OutboxRelay,
    Publication,
    publish,
)
from {{ cookiecutter.package_name }}.outbox.settings import OutboxSettings
from {{ cookiecutter.package_name }}.runtime import create_api

from tests.integration.conftest import REDIS_URL, TIMEOUT, requires_services

pytestmark = requires_services

EMAIL = {"recipientEmail": "buyer@example.com"}
BROKER_DOWN = "redis://127.0.0.1:1/0"
PENDING = 30


def new_product(client: TestClient) -> int:
    body = {"sku": secrets.token_hex(6), "name": "Kettle", "category": "kitchen"}
    response = client.post("/products/", json=body | {"priceCents": 1, "stock": 0})
    assert response.status_code == 201, response.text
    product_id: int = response.json()["id"]
    return product_id


def queue_keys(broker: redis.Redis, queue: str) -> list[bytes]:
    """The Redis lists of ``queue``, its priority sub-queues included."""
    keys = cast(list[bytes], broker.keys(f"{queue}*"))
    return [key for key in keys if key.split(b"\x06\x16")[0] == queue.encode()]


def queued_ids(queue: str) -> list[str]:
    """Ids of the messages waiting in ``queue``."""
    broker = redis.Redis.from_url(f"{REDIS_URL}/14")
    keys = queue_keys(broker, queue)
    raw = [item for key in keys for item in cast(list[bytes], broker.lrange(key.decode(), 0, -1))]
    return [json.loads(item)["headers"]["id"] for item in raw]


@pytest.fixture
def erp_queue() -> Iterator[str]:
    """The ``erp`` queue these tests publish to and only count, emptied afterwards so
    that no later test's worker runs their jobs."""
    yield "erp"
    broker = redis.Redis.from_url(f"{REDIS_URL}/14")
    for key in queue_keys(broker, "erp"):
        broker.delete(key)


async def relay_twice_at_once(database_url: str) -> list[int]:
    publisher = Celery(broker=f"{REDIS_URL}/14")
    managers = [SessionManager(database_url) for _ in range(2)]
    relays = [OutboxRelay(publisher, manager, OutboxSettings()) for manager in managers]
    try:
        first, second = relays
        return list(await asyncio.gather(first.publish_pending(), second.publish_pending()))
    finally:
        for relay, manager in zip(relays, managers, strict=True):
            await relay.stop()
            await manager.dispose()


@pytest.fixture
def job_ids(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Ids of PENDING ERP syncs dispatched while the broker was down, so their rows wait
    in the outbox; the broker is back for what the test does next."""
    monkeypatch.setenv("CELERY_BROKER_URL", BROKER_DOWN)
    with TestClient(create_api()) as client:
        product_ids = [new_product(client) for _ in range(PENDING)]
        accepted = client.post("/products/jobs/sync-erp", json={"productIds": product_ids})
        assert accepted.status_code == 202
    monkeypatch.setenv("CELERY_BROKER_URL", f"{REDIS_URL}/14")  # Celery reads it first
    ids: list[str] = accepted.json()["jobIds"]
    return ids


def test_two_relays_at_once_publish_each_pending_entry_once(
    database_url: str, erp_queue: str, job_ids: list[str]
) -> None:
    time.sleep(FAST_PATH_GRACE)  # rows younger than this belong to the post-commit publish

    published = asyncio.run(relay_twice_at_once(database_url))

    assert sum(published) == PENDING
    queued = queued_ids(erp_queue)
    assert sorted(job_id for job_id in queued if job_id in set(job_ids)) == sorted(job_ids)


async def relays_racing_the_post_commit_publish(database_url: str) -> None:
    """Two relay passes and, for every pending row, the publish right after its commit."""
    publisher = Celery(broker=f"{REDIS_URL}/14")
    managers = [SessionManager(database_url) for _ in range(3)]
    first, second, committer = (
        OutboxRelay(publisher, manager, OutboxSettings()) for manager in managers
    )
    try:
        async with managers[0].session() as session:
            unsent = select(first.table).where(first.table.sent_at.is_(None))
            pending = (await session.scalars(unsent)).all()
        publications = [Publication.of(row) for row in pending]
        await asyncio.gather(
            first.publish_pending(),
            second.publish_pending(),
            *(committer._publish_committed(publication) for publication in publications),
        )
    finally:
        for relay in (first, second, committer):
            await relay.stop()
        for manager in managers:
            await manager.dispose()


def test_the_post_commit_publish_and_relays_at_once_publish_each_entry_once(
    monkeypatch: pytest.MonkeyPatch, database_url: str, erp_queue: str, job_ids: list[str]
) -> None:
    # Without the grace, relay passes take the same fresh rows the commits publish.
    monkeypatch.setattr(relay_module, "FAST_PATH_GRACE", 0.0)

    asyncio.run(relays_racing_the_post_commit_publish(database_url))

    queued = [job_id for job_id in queued_ids(erp_queue) if job_id in set(job_ids)]
    assert sorted(queued) == sorted(job_ids)


async def notifications_for(database_url: str, product_id: int) -> int:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            query = text("SELECT count(*) FROM restock_notifications WHERE product_id = :id")
            return int((await connection.execute(query, {"id": product_id})).scalar_one())
    finally:
        await engine.dispose()


def test_the_same_message_delivered_twice_sends_one_email_and_tags_once(
    api: TestClient, worker: Path, database_url: str
) -> None:
    product_id = new_product(api)
    job_id = api.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL).json()["jobId"]
    relay = api.app.state.outbox_relay  # type: ignore[attr-defined]
    deadline = time.monotonic() + TIMEOUT
    while api.get(f"/products/{product_id}").json()["category"] != "kitchen-restock-notified":
        assert time.monotonic() < deadline, "the first delivery's callback never tagged"
        time.sleep(0.2)
    recorded = api.portal.call(relay.publication, job_id)  # type: ignore[union-attr]
    assert recorded is not None

    # A relay that crashed between publishing and marking: the broker gets it again.
    publish(Celery(broker=f"{REDIS_URL}/14"), recorded)

    deadline = time.monotonic() + TIMEOUT
    while worker.read_text().count("restock email already sent") < 1:
        assert time.monotonic() < deadline, "the second delivery never ran"
        time.sleep(0.2)
    time.sleep(1)  # its success callback runs right after
    assert asyncio.run(notifications_for(database_url, product_id)) == 1
    assert worker.read_text().count("restock email sent") == 1
    assert api.get(f"/products/{product_id}").json()["category"] == "kitchen-restock-notified"
