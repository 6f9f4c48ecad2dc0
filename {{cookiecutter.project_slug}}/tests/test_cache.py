"""loom's repository cache over products (cache.py, config/cache.yaml): reads come from
it, every write through the service is read at once, and a cache that does not answer
costs speed, not requests. The shared Redis cache of the stack is tested in the stack's
own tests; here the cache is the embedded mode's, in memory."""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiocache import RedisCache
from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }}.cache import RedisReadCache
from {{ cookiecutter.package_name }}.runtime import create_api, create_worker

from tests.conftest import ProductFactory, one_line

EMAIL = {"recipientEmail": "buyer@example.com"}


def closed_port() -> int:
    """A loopback port nothing listens on, new for each test: the cache logs a Redis
    that does not answer once per process, by its address."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_a_row_changed_behind_the_services_back_is_read_from_the_cache(
    client: TestClient, create_product: ProductFactory, tmp_path: Path
) -> None:
    product = create_product(name="Kettle")
    client.get(f"/products/{product['id']}")
    with sqlite3.connect(tmp_path / "test.db") as database:
        database.execute("UPDATE products SET name = 'Changed' WHERE id = ?", (product["id"],))

    assert client.get(f"/products/{product['id']}").json()["name"] == "Kettle"


def test_an_update_through_the_api_is_read_at_once(
    client: TestClient, create_product: ProductFactory
) -> None:
    product = create_product(stock=0)
    client.get(f"/products/{product['id']}")

    client.patch(f"/products/{product['id']}", json={"stock": 9})

    assert client.get(f"/products/{product['id']}").json()["stock"] == 9


def test_a_delete_through_the_api_is_read_at_once(
    client: TestClient, create_product: ProductFactory
) -> None:
    product = create_product()
    client.get(f"/products/{product['id']}")

    client.delete(f"/products/{product['id']}")

    assert client.get(f"/products/{product['id']}").status_code == 404


def test_a_create_is_on_the_next_list_page(
    client: TestClient, create_product: ProductFactory
) -> None:
    create_product(sku="A")
    client.get("/products/")

    create_product(sku="B")

    assert [item["sku"] for item in client.get("/products/").json()["items"]] == ["A", "B"]


def test_a_callbacks_write_is_read_at_once(
    client: TestClient, create_product: ProductFactory
) -> None:
    product = create_product(stock=0, category="kitchen")
    client.get(f"/products/{product['id']}")

    client.post(f"/products/{product['id']}/jobs/restock-email", json=EMAIL)

    assert client.get(f"/products/{product['id']}").json()["category"] == "kitchen-restock-notified"


@pytest.fixture
def client_without_a_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The API with its cache on a Redis that does not answer."""
    monkeypatch.setenv("CACHE_URL", f"redis://127.0.0.1:{closed_port()}/2")
    with TestClient(create_api(), raise_server_exceptions=False) as test_client:
        yield test_client


def test_with_redis_not_answering_reads_and_writes_answer_from_the_database(
    client_without_a_cache: TestClient,
) -> None:
    client = client_without_a_cache
    body = {"sku": "A", "name": "Kettle", "category": "kitchen", "priceCents": 1, "stock": 0}
    product_id = client.post("/products/", json=body).json()["id"]
    client.get(f"/products/{product_id}")

    renamed = client.patch(f"/products/{product_id}", json={"name": "Teapot"})

    assert renamed.status_code == 200, renamed.text
    assert client.get(f"/products/{product_id}").json()["name"] == "Teapot"
    assert client.get("/products/").json()["items"][0]["name"] == "Teapot"


def test_redis_not_answering_is_logged_once_not_per_request(
    client_without_a_cache: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    client = client_without_a_cache
    caplog.set_level(logging.WARNING, logger="{{ cookiecutter.package_name }}.cache")

    for _ in range(3):
        assert client.get("/products/1").status_code == 404

    warnings = [record.getMessage() for record in caplog.records if record.name.endswith("cache")]
    assert len(warnings) == 1
    assert warnings[0].startswith("cache: Redis does not answer, reading the database")


@pytest.mark.parametrize("start", [create_worker, create_api], ids=["worker", "api"])
def test_a_deployed_service_refuses_a_cache_of_its_own_while_jobs_run_in_workers(
    monkeypatch: pytest.MonkeyPatch, start: object
) -> None:
    monkeypatch.setenv("LOOM_ENV", "production")
    monkeypatch.setenv("CURSOR_KEY_K1", base64.b64encode(secrets.token_bytes(32)).decode())
    monkeypatch.setenv("JWT_SECRET", secrets.token_urlsafe(48))
    monkeypatch.setenv("JOB_RUNTIME", "celery")
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
    monkeypatch.delenv("CACHE_URL", raising=False)

    with pytest.raises(SystemExit) as refused:
        start()  # type: ignore[operator]

    assert one_line(refused).startswith("CACHE_URL=memory:// keeps the cache in this process")


def test_an_unknown_cache_scheme_is_refused_in_one_line_without_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CACHE_URL", "memcached://:secret-password@cache:11211")

    with pytest.raises(SystemExit) as refused:
        create_api()

    assert one_line(refused) == "CACHE_URL must start with memory:// or redis://, not memcached://"


def test_defect_aiocache_redis_fails_a_read_of_no_keys() -> None:
    """aiocache 0.12.3; RedisReadCache answers it with an empty list itself."""
    with pytest.raises(TypeError, match="mget"):
        asyncio.run(RedisCache(port=closed_port()).multi_get([]))


def test_fix_a_read_of_no_keys_is_an_empty_answer() -> None:
    assert asyncio.run(RedisReadCache(f"redis://127.0.0.1:{closed_port()}/2").multi_get([])) == []


def test_fix_an_empty_list_page_is_served_with_the_cache_on_redis(
    client_without_a_cache: TestClient,
) -> None:
    response = client_without_a_cache.get("/products/low-stock")

    assert response.status_code == 200, response.text
    assert response.json()["items"] == []
