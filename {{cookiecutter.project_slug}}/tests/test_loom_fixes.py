"""Each workaround in loom_fixes: the defect on plain loom-kernel, then the fix.

When an upgrade of loom-kernel makes a "defect" test fail, the defect is gone: delete the
workaround and its tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from celery.app.base import Celery
from fastapi import FastAPI
from fastapi.testclient import TestClient
from kombu import Connection
from loom.celery.bootstrap import bootstrap_worker
from loom.celery.service import CeleryJobService
from loom.core.config.overrides import load_application_config
from loom.core.di.container import LoomContainer
from loom.core.job.service import JobService
from loom.rest import autocrud
from loom.rest.fastapi.auto import create_app

from {{ cookiecutter.package_name }}.auth import DevelopmentAccess
from {{ cookiecutter.package_name }}.loom_fixes import (
    _derivation_keeping_constraints,
    api_celery_app,
    apply_job_overrides,
    worker_job_service_module,
)
from {{ cookiecutter.package_name }}.product.jobs import SyncProductToErpJob
from {{ cookiecutter.package_name }}.product.model import Product
from {{ cookiecutter.package_name }}.runtime import Process, config_paths, create_api


def plain_loom_api(**options: Any) -> FastAPI:
    """The API as loom builds it, with none of the fixes (open, as in tests)."""
    return create_app(*config_paths(Process.API), authenticator=DevelopmentAccess(), **options)


def test_defect_worker_without_a_job_service_fails_to_boot() -> None:
    with pytest.raises(Exception, match="injects job_service: JobService"):
        bootstrap_worker(*config_paths(Process.WORKER))


def test_fix_worker_gets_a_celery_job_service() -> None:
    booted: list[Celery] = []
    result = bootstrap_worker(
        *config_paths(Process.WORKER), modules=[worker_job_service_module(lambda: booted[0])]
    )
    booted.append(result.celery_app)

    assert isinstance(result.container.resolve(JobService), CeleryJobService)


def test_defect_api_ignores_the_jobs_yaml() -> None:
    plain_loom_api()

    assert SyncProductToErpJob.__dict__.get("__queue__") is None
    assert (SyncProductToErpJob.__queue__, SyncProductToErpJob.__countdown__) == ("default", 0)


def test_fix_api_applies_the_jobs_yaml() -> None:
    paths = config_paths(Process.API)
    plain_loom_api()

    apply_job_overrides(load_application_config(*paths))

    assert SyncProductToErpJob.__queue__ == "erp"
    assert SyncProductToErpJob.__countdown__ == 5
    assert SyncProductToErpJob.__priority__ == 5


def test_fix_rejects_a_jobs_entry_that_names_no_job(tmp_path: pytest.TempPathFactory) -> None:
    paths = config_paths(Process.API)
    typo = tmp_path / "typo.yaml"  # type: ignore[operator]
    typo.write_text("jobs:\n  SyncProductToErp:\n    queue: erp\n")
    plain_loom_api()

    with pytest.raises(ValueError, match="SyncProductToErp name no Job class"):
        apply_job_overrides(load_application_config(*paths, str(typo)))


PRODUCT = {"sku": "KET-1", "name": "Kettle", "category": "kitchen", "priceCents": 2599, "stock": 0}


@pytest.fixture
def celery_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The API with the Celery job service on kombu's in-process broker."""
    monkeypatch.setenv("JOB_RUNTIME", "celery")
    monkeypatch.setenv("CELERY_BROKER_URL", "memory://")
    monkeypatch.setenv("CELERY_RESULT_BACKEND", "cache+memory://")
    with TestClient(create_api()) as client:
        yield client


def test_fix_erp_sync_message_carries_the_yaml_queue_countdown_and_priority(
    celery_api: TestClient,
) -> None:
    product = celery_api.post("/products/", json=PRODUCT).json()
    sent_at = datetime.now(UTC)

    response = celery_api.post("/products/jobs/sync-erp", json={"productIds": [product["id"]]})

    assert response.status_code == 202
    with Connection("memory://") as connection:
        message = connection.SimpleQueue("erp").get(timeout=1)
    assert message.headers["task"] == "loom.job.SyncProductToErpJob"
    assert message.headers["id"] == response.json()["jobIds"][0]
    assert message.properties["priority"] == 5
    eta = datetime.fromisoformat(message.headers["eta"])
    assert timedelta(seconds=4) < eta - sent_at < timedelta(seconds=6)


def test_fix_reaches_the_celery_app_the_api_publishes_with(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOB_RUNTIME", "celery")
    monkeypatch.setenv("CELERY_BROKER_URL", "memory://")
    containers: list[LoomContainer] = []
    plain_loom_api(modules=[containers.append])

    publisher = api_celery_app(containers[0])

    assert isinstance(publisher, Celery)
    assert publisher.conf.broker_url == "memory://"


def test_fix_finds_no_celery_app_with_the_in_process_job_service() -> None:
    containers: list[LoomContainer] = []
    plain_loom_api(modules=[containers.append])

    assert api_celery_app(containers[0]) is None


def test_defect_plain_loom_answers_malformed_json_with_a_500() -> None:
    with TestClient(plain_loom_api(), raise_server_exceptions=False) as client:
        response = client.post(
            "/products/", content=b"{not json", headers={"content-type": "application/json"}
        )

    assert response.status_code == 500


def test_defect_plain_loom_answers_an_empty_body_with_a_500() -> None:
    with TestClient(plain_loom_api(), raise_server_exceptions=False) as client:
        response = client.post("/products/", headers={"content-type": "application/json"})

    assert response.status_code == 500


def test_defect_plain_loom_answers_an_id_past_the_integer_column_with_a_500() -> None:
    with TestClient(plain_loom_api(), raise_server_exceptions=False) as client:
        response = client.get(f"/products/{2**70}")

    assert response.status_code == 500


def test_defect_autocrud_inputs_drop_the_model_constraints() -> None:
    create_input = autocrud._derive_create_struct(Product)

    accepted = msgspec.convert(PRODUCT | {"sku": "x" * 500, "stock": -1}, create_input)

    assert accepted.stock == -1  # type: ignore[attr-defined]


def test_fix_autocrud_inputs_keep_the_model_constraints() -> None:
    with _derivation_keeping_constraints():
        create_input = autocrud._derive_create_struct(Product)

    with pytest.raises(msgspec.ValidationError, match="sku"):
        msgspec.convert(PRODUCT | {"sku": "x" * 500}, create_input)


def test_defect_plain_loom_documents_a_422_body_it_never_sends() -> None:
    operation = plain_loom_api().openapi()["paths"]["/products/{id}"]["get"]

    assert operation["responses"]["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/HTTPValidationError"
    }
