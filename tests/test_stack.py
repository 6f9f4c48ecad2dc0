"""The generated stack for real: its compose services run as local processes against this
machine's PostgreSQL and a private Redis, and the job flow is driven over HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from tests.flows import (
    EMAIL,
    JOB_TIMEOUT,
    category_becomes,
    flower_lists_the_job_and_its_callback,
    flower_refuses_anonymous_requests,
    flower_tasks,
    forced_failure_is_retried_then_tagged,
    new_product,
    restock_email_tags_the_product,
)
from tests.stack import PG_ADMIN, PG_HOST, PG_PORT, Stack, json_log, running_stack, wait_for

# The generated model's category column (product/model.py).
CATEGORY_LENGTH = 120

# The stack's worker serves callbacks (default) and notifications; erp stays unconsumed.
WORKER_QUEUES = "default,notifications"


@pytest.fixture(scope="module")
def stack(default_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(default_project, tmp_path_factory.mktemp("logs"), WORKER_QUEUES) as running:
        yield running


def queued_messages(stack: Stack, queue: str) -> list[dict[str, Any]]:
    """Messages waiting in a Redis queue, priority sub-queues included."""
    broker = stack.broker()
    keys = [key for key in broker.keys(f"{queue}*") if key.decode().split("\x06\x16")[0] == queue]
    return [json.loads(raw) for key in keys for raw in broker.lrange(key, 0, -1)]


def queued_ids(stack: Stack, queue: str) -> list[str]:
    return [message["headers"]["id"] for message in queued_messages(stack, queue)]


def test_restock_email_runs_on_the_worker_and_its_callback_tags_the_product(
    api: httpx.Client,
) -> None:
    restock_email_tags_the_product(api)


def test_forced_failure_is_tried_one_plus_retries_times_then_the_failure_callback_tags(
    api: httpx.Client, flower: httpx.Client
) -> None:
    forced_failure_is_retried_then_tagged(api, flower)


def test_erp_sync_lands_on_the_erp_queue_with_the_yaml_countdown_and_priority(
    api: httpx.Client, stack: Stack
) -> None:
    product_id = new_product(api)
    before = len(queued_messages(stack, "erp"))
    sent_at = datetime.now(UTC)

    accepted = api.post("/products/jobs/sync-erp", json={"productIds": [product_id]})

    assert accepted.status_code == 202
    (job_id,) = accepted.json()["jobIds"]
    # Published right after the commit, in the background: the answer does not wait for it.
    wait_for(lambda: job_id in queued_ids(stack, "erp"), "the job on the erp queue", 10)
    messages = {message["headers"]["id"]: message for message in queued_messages(stack, "erp")}
    assert len(messages) == before + 1
    message = messages[job_id]
    assert message["headers"]["task"] == "loom.job.SyncProductToErpJob"
    assert message["properties"]["priority"] == 5
    eta = datetime.fromisoformat(message["headers"]["eta"])
    assert timedelta(seconds=4) < eta - sent_at < timedelta(seconds=6)


def test_worker_for_other_queues_leaves_erp_jobs_alone(api: httpx.Client, stack: Stack) -> None:
    product_id = new_product(api)
    accepted = api.post("/products/jobs/sync-erp", json={"productIds": [product_id]})
    (job_id,) = accepted.json()["jobIds"]

    time.sleep(7)  # past the 5 s countdown: a worker consuming erp would have taken it

    assert job_id in {message["headers"]["id"] for message in queued_messages(stack, "erp")}


def test_summary_runs_in_the_api_process_and_sends_no_task(
    api: httpx.Client, stack: Stack, flower: httpx.Client
) -> None:
    product_id = new_product(api, name="Lamp", sku="LAMP-1", stock=2, priceCents=1000)

    response = api.get(f"/products/{product_id}/jobs/summary")

    assert response.json()["summary"] == "Lamp (LAMP-1) in kitchen: 2 in stock at 10.00"
    assert queued_messages(stack, "analytics") == []
    assert flower_tasks(flower, "loom.job.BuildProductSummaryJob") == {}


def test_use_case_that_fails_after_dispatching_sends_nothing(
    api: httpx.Client, stack: Stack
) -> None:
    product_id = new_product(api)
    before = queued_ids(stack, "erp")

    response = api.post("/products/jobs/sync-erp", json={"productIds": [product_id, 999_999]})
    # A later dispatch that commits, published after anything the failed one could have sent.
    later = api.post("/products/jobs/sync-erp", json={"productIds": [product_id]})

    assert response.status_code == 404
    (later_id,) = later.json()["jobIds"]
    wait_for(lambda: later_id in queued_ids(stack, "erp"), "the later job on the erp queue", 10)
    assert sorted(queued_ids(stack, "erp")) == sorted([*before, later_id])


def test_flower_refuses_requests_without_credentials(stack: Stack) -> None:
    flower_refuses_anonymous_requests(stack.url("flower"))


def test_flower_lists_the_job_and_callback_tasks(api: httpx.Client, flower: httpx.Client) -> None:
    flower_lists_the_job_and_its_callback(api, flower)


def succeeded_on_flower(flower: httpx.Client, task_name: str) -> float:
    """What Flower's ``/metrics`` counts of ``task_name``'s task-succeeded events."""
    scraped = flower.get("/metrics")
    assert scraped.status_code == 200, scraped.text
    return sum(
        sample.value
        for family in text_string_to_metric_families(scraped.text)
        if family.name == "flower_events"
        for sample in family.samples
        if sample.name == "flower_events_total"
        and sample.labels.get("task") == task_name
        and sample.labels.get("type") == "task-succeeded"
    )


def test_flower_serves_the_workers_metrics_for_prometheus(
    api: httpx.Client, flower: httpx.Client
) -> None:
    before = succeeded_on_flower(flower, "loom.job.SendRestockEmailJob")
    product_id = new_product(api)

    api.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL)

    wait_for(
        lambda: succeeded_on_flower(flower, "loom.job.SendRestockEmailJob") > before,
        "Flower's /metrics to count the job's success",
        timeout=JOB_TIMEOUT,
    )


def test_migrations_match_the_models(stack: Stack) -> None:
    checked = stack.run("migrate", ["alembic", "check"])

    assert checked.returncode == 0, checked.stderr
    assert "No new upgrade operations detected" in checked.stdout + checked.stderr


def test_health_answers_anonymously_with_the_outbox_backlog(
    api: httpx.Client, stack: Stack
) -> None:
    product_id = new_product(api)
    api.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL)
    category_becomes(api, product_id, "kitchen-restock-notified")

    health = httpx.get(f"{stack.url('api')}/health", timeout=10)

    assert health.status_code == 200
    assert health.json()["outbox"] == {"pending": 0, "oldestPendingSeconds": 0.0}


def test_anonymous_caller_cannot_write(stack: Stack) -> None:
    response = httpx.post(f"{stack.url('api')}/products/", json={"sku": "X"}, timeout=10)

    assert response.status_code == 401


def test_redis_refuses_a_client_without_the_password(stack: Stack) -> None:
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=stack.redis_port).ping()


def test_callback_tags_a_category_already_at_its_column_length(api: httpx.Client) -> None:
    full = "c" * CATEGORY_LENGTH
    product_id = new_product(api, category=full)

    api.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL)

    suffix = "-restock-notified"
    category_becomes(api, product_id, full[: CATEGORY_LENGTH - len(suffix)] + suffix)


def test_the_dispatching_caller_is_in_the_jobs_log(api: httpx.Client, stack: Stack) -> None:
    product_id = new_product(api)

    api.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL)

    def logged_with_caller(record: dict[str, Any]) -> bool:
        caller = record.get("caller")
        return record.get("product_id") == product_id and caller == "local-operator"

    wait_for(
        lambda: any(logged_with_caller(record) for record in json_log(stack, "worker")),
        "the worker to log who asked for the job",
        timeout=JOB_TIMEOUT,
    )


def test_the_worker_logs_a_job_and_its_callback_under_the_trace_id_of_the_request(
    api: httpx.Client, stack: Stack
) -> None:
    product_id = new_product(api)

    accepted = api.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL)

    trace_id = accepted.headers["x-request-id"]
    category_becomes(api, product_id, "kitchen-restock-notified")
    job = [record for record in json_log(stack, "worker") if record.get("product_id") == product_id]
    assert [record["event"] for record in job] == [
        "restock email",
        "restock email sent",
        "tagging product category",
    ]
    assert {record["trace_id"] for record in job} == {trace_id}


def test_the_api_serves_prometheus_metrics_by_route_without_a_token(
    api: httpx.Client, stack: Stack
) -> None:
    product_id = new_product(api)
    api.get(f"/products/{product_id}")

    scraped = httpx.get(f"{stack.url('api')}/metrics", timeout=10)

    assert scraped.status_code == 200
    families = {family.name: family for family in text_string_to_metric_families(scraped.text)}
    routes = {sample.labels["path_template"] for sample in families["http_requests"].samples}
    assert {"/products/", "/products/{id}"} <= routes


def category_in_the_database(stack: Stack, product_id: int) -> str:
    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_ADMIN, dbname=stack.database) as db:
        row = db.execute("SELECT category FROM products WHERE id = %s", (product_id,)).fetchone()
    assert row is not None
    category: str = row[0]
    return category


def cached_products(stack: Stack) -> list[bytes]:
    """The product entries in the stack's cache (CACHE_URL: Redis database 2)."""
    cache = redis.Redis(port=stack.redis_port, password=stack.variables()["REDIS_PASSWORD"], db=2)
    return list(cache.scan_iter("entries:products:*"))


def test_the_api_caches_a_product_it_read_in_the_shared_redis(
    api: httpx.Client, stack: Stack
) -> None:
    product_id = new_product(api)

    api.get(f"/products/{product_id}")

    assert any(
        key.startswith(f"entries:products:{product_id}:".encode()) for key in cached_products(stack)
    )


def test_a_callbacks_write_on_the_worker_is_the_next_read_of_the_api(
    api: httpx.Client, stack: Stack
) -> None:
    product_id = new_product(api, category="kitchen")
    assert api.get(f"/products/{product_id}").json()["category"] == "kitchen"

    api.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL)
    wait_for(
        lambda: category_in_the_database(stack, product_id) == "kitchen-restock-notified",
        "the callback's write in PostgreSQL",
        timeout=JOB_TIMEOUT,
    )

    assert api.get(f"/products/{product_id}").json()["category"] == "kitchen-restock-notified"


def test_an_api_write_is_the_next_read_with_the_cache_on_redis(api: httpx.Client) -> None:
    product_id = new_product(api, stock=0)
    assert api.get(f"/products/{product_id}").json()["stock"] == 0

    api.patch(f"/products/{product_id}", json={"stock": 7})

    assert api.get(f"/products/{product_id}").json()["stock"] == 7
