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
