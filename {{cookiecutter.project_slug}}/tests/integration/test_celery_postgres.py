"""The job flow on PostgreSQL with a real Celery worker consuming from the broker."""

from __future__ import annotations

import base64
import json
import secrets
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }}.auth import DevelopmentAccess
from {{ cookiecutter.package_name }}.runtime import create_api

from tests.integration.conftest import TIMEOUT, requires_services, running_worker

EMAIL = {"recipientEmail": "buyer@example.com"}

pytestmark = requires_services

# A deployed worker: JSON log lines, and the cursor key production asks for.
DEPLOYED = {
    "LOOM_ENV": "production",
    "CURSOR_KEY_K1": base64.b64encode(secrets.token_bytes(32)).decode(),
}


def category_of(api: TestClient, product_id: int, expected: str) -> str:
    deadline = time.monotonic() + TIMEOUT
    category: str = api.get(f"/products/{product_id}").json()["category"]
    while category != expected and time.monotonic() < deadline:
        time.sleep(0.2)
        category = api.get(f"/products/{product_id}").json()["category"]
    return category


def out_of_stock_product(api: TestClient) -> int:
    body = {"sku": secrets.token_hex(4), "name": "Kettle", "category": "kitchen", "priceCents": 1}
    product_id: int = api.post("/products/", json=body | {"stock": 0}).json()["id"]
    return product_id


@pytest.mark.usefixtures("worker")
def test_worker_sends_the_email_and_the_callback_tags_the_product(api: TestClient) -> None:
    product_id = out_of_stock_product(api)

    accepted = api.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL)

    assert accepted.status_code == 202
    assert category_of(api, product_id, "kitchen-restock-notified") == "kitchen-restock-notified"


@pytest.mark.usefixtures("worker")
def test_failing_job_ends_in_the_failure_callback(api: TestClient) -> None:
    product_id = out_of_stock_product(api)

    api.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL | {"forceFail": True})

    assert category_of(api, product_id, "kitchen-restock-failed") == "kitchen-restock-failed"


@pytest.mark.parametrize("path", [f"/products/{2**31}", f"/products/?stock={2**40}"])
def test_value_past_the_integer_column_is_refused_not_a_500(path: str) -> None:
    with TestClient(create_api()) as client:
        response = client.get(path)

    assert response.status_code == 422, response.text
    assert response.json()["detail"]["code"] == "boundary_validation"


def json_records(log: Path) -> list[dict[str, Any]]:
    # Celery prints its start banner and shutdown notice outside logging, as text.
    lines = [line for line in log.read_text().splitlines() if line.startswith("{")]
    return [json.loads(line) for line in lines]


def test_worker_logs_the_job_and_its_callback_under_the_trace_id_of_the_request(
    api: TestClient, tmp_path: Path
) -> None:
    with running_worker(tmp_path / "worker.log", **DEPLOYED) as log:
        product_id = out_of_stock_product(api)

        response = api.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL)

        trace_id = response.headers["x-request-id"]
        tagged = category_of(api, product_id, "kitchen-restock-notified")
        assert tagged == "kitchen-restock-notified"
        records = json_records(log)
    job = [record for record in records if record.get("product_id") == product_id]
    assert [record["event"] for record in job] == [
        "restock email",
        "restock email sent",
        "tagging product category",
    ]
    assert {record["trace_id"] for record in job} == {trace_id}
    finished = [record for record in records if "succeeded" in record["event"]]
    assert {record.get("trace_id") for record in finished} == {trace_id}


def test_every_line_a_job_logs_names_the_caller_who_dispatched_it(
    api: TestClient, tmp_path: Path
) -> None:
    with running_worker(tmp_path / "worker.log", **DEPLOYED) as log:
        product_id = out_of_stock_product(api)

        api.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL)

        category_of(api, product_id, "kitchen-restock-notified")
        records = json_records(log)
    job = [record for record in records if record["event"].startswith("restock email")]
    assert len(job) == 2
    assert {record.get("caller") for record in job} == {DevelopmentAccess.IDENTITY.subject}
