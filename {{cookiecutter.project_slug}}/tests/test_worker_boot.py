"""Both discovery modes boot the API and a worker that registers every task the service needs."""

from __future__ import annotations

import importlib

import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }}.jobs import added_jobs
from {{ cookiecutter.package_name }}.runtime import create_api, create_worker

EXPECTED_TASKS = {
    *(f"loom.job.{job.__name__}" for job in added_jobs()),
    "loom.job.SendRestockEmailJob",
    "loom.job.BuildProductSummaryJob",
    "loom.job.SyncProductToErpJob",
    "loom.job.LowStockSweepJob",
    "loom.callback.RestockEmailSuccessCallback",
    "loom.callback.RestockEmailFailureCallback",
    "loom.callback_error.RestockEmailSuccessCallback",
    "loom.callback_error.RestockEmailFailureCallback",
}


@pytest.fixture(params=["modules", "manifest"])
def discovery_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    mode: str = request.param
    monkeypatch.setenv("LOOM__APP__DISCOVERY__MODE", mode)
    return mode


def test_worker_registers_every_job_and_callback_task(discovery_mode: str) -> None:
    celery_app = create_worker()

    assert set(celery_app.tasks) >= EXPECTED_TASKS


def test_worker_entry_point_registers_every_job_and_callback_task() -> None:
    worker_main = importlib.import_module("{{ cookiecutter.package_name }}.worker_main")

    assert set(importlib.reload(worker_main).celery_app.tasks) >= EXPECTED_TASKS


def test_worker_declares_the_configured_queues(discovery_mode: str) -> None:
    celery_app = create_worker()

    queues = {queue.name for queue in celery_app.conf.task_queues}
    assert queues == set({{ cookiecutter.queues.split(",") | map("trim") | list | tojson }})
    assert celery_app.conf.task_default_queue == {{ cookiecutter.default_queue | tojson }}


def test_api_serves_the_product_routes(discovery_mode: str) -> None:
    with TestClient(create_api()) as client:
        paths = set(client.get("/openapi.json").json()["paths"])

    assert {
        "/products/",
        "/products/{id}",
        "/products/low-stock",
        "/products/jobs/sync-erp",
        "/products/jobs/low-stock-sweep",
        "/products/{product_id}/jobs/restock-email",
        "/products/{product_id}/jobs/summary",
        "/products/{product_id}/workflows/restock",
    } <= paths


def test_worker_acks_late_and_gives_up_on_a_dead_broker_quickly(discovery_mode: str) -> None:
    celery_app = create_worker()

    assert celery_app.conf.task_acks_late is True
    assert celery_app.conf.task_reject_on_worker_lost is True
    assert celery_app.conf.worker_prefetch_multiplier == 1
    assert celery_app.conf.task_publish_retry_policy["max_retries"] == 1


def test_worker_takes_its_visibility_timeout_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CELERY_VISIBILITY_TIMEOUT", "45")

    celery_app = create_worker()

    assert celery_app.conf.broker_transport_options["visibility_timeout"] == 45


def test_worker_visibility_timeout_defaults_to_ten_minutes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CELERY_VISIBILITY_TIMEOUT", raising=False)

    celery_app = create_worker()

    assert celery_app.conf.broker_transport_options["visibility_timeout"] == 600
