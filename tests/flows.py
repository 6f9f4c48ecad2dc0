"""The job flow driven over HTTP: shared by the tests of the simulated and the containerised
stack."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.stack import wait_for

EMAIL = {"recipientEmail": "buyer@example.com"}
JOB_TIMEOUT = 30.0


def new_product(api: httpx.Client, **fields: Any) -> int:
    body = {
        "sku": f"SKU-{time.monotonic_ns()}",
        "name": "Kettle",
        "category": "kitchen",
        "priceCents": 2599,
        "stock": 0,
    }
    response = api.post("/products/", json=body | fields)
    assert response.status_code == 201, response.text
    product_id: int = response.json()["id"]
    return product_id


def category_becomes(api: httpx.Client, product_id: int, expected: str) -> None:
    wait_for(
        lambda: api.get(f"/products/{product_id}").json()["category"] == expected,
        f"product {product_id} to be tagged {expected!r}",
        timeout=JOB_TIMEOUT,
    )


def flower_tasks(flower: httpx.Client, task_name: str) -> dict[str, Any]:
    response = flower.get("/api/tasks", params={"taskname": task_name})
    assert response.status_code == 200, response.text
    tasks: dict[str, Any] = response.json()
    return tasks


def restock_email_tags_the_product(api: httpx.Client) -> None:
    """Dispatch the restock e-mail; the worker runs it and its callback tags the product."""
    product_id = new_product(api)

    accepted = api.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL)

    assert accepted.status_code == 202
    assert accepted.json()["queue"] == "notifications"
    category_becomes(api, product_id, "kitchen-restock-notified")


def forced_failure_is_retried_then_tagged(api: httpx.Client, flower: httpx.Client) -> None:
    """A failing restock e-mail is tried 1 + retries times, then the failure callback tags."""
    product_id = new_product(api)

    accepted = api.post(
        f"/products/{product_id}/jobs/restock-email", json=EMAIL | {"forceFail": True}
    )

    category_becomes(api, product_id, "kitchen-restock-failed")
    job_id = accepted.json()["jobId"]
    wait_for(
        lambda: (
            flower_tasks(flower, "loom.job.SendRestockEmailJob").get(job_id, {}).get("state")
            == "FAILURE"
        ),
        "Flower to record the job's failure",
        timeout=JOB_TIMEOUT,
    )
    # __retries__ = 2 in jobs.yaml: one attempt, then two retries.
    assert flower_tasks(flower, "loom.job.SendRestockEmailJob")[job_id]["retries"] == 2


def flower_lists_the_job_and_its_callback(api: httpx.Client, flower: httpx.Client) -> None:
    """Flower (its worker runs with -E) shows the restock e-mail job and its callback task."""
    product_id = new_product(api)
    api.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL)
    category_becomes(api, product_id, "kitchen-restock-notified")

    wait_for(
        lambda: bool(flower_tasks(flower, "loom.callback.RestockEmailSuccessCallback")),
        "Flower to list the success callback",
        timeout=JOB_TIMEOUT,
    )
    assert flower_tasks(flower, "loom.job.SendRestockEmailJob")


def flower_refuses_anonymous_requests(flower_url: str) -> None:
    assert httpx.get(f"{flower_url}/api/workers", timeout=10).status_code == 401
