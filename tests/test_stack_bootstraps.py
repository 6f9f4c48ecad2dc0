"""The guide's other worker bootstraps run the job flow on the real stack too."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import bake_installed
from tests.flows import EMAIL, category_becomes, new_product
from tests.stack import running_stack


@pytest.fixture(scope="module", params=["manifest", "explicit"])
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    project = bake_installed(tmp_path_factory.mktemp(request.param), worker_bootstrap=request.param)
    logs = tmp_path_factory.mktemp(f"{request.param}-logs")
    with (
        running_stack(project, logs, "default,notifications,analytics,erp") as stack,
        stack.api_client() as client,
    ):
        yield client


def test_worker_runs_the_job_and_the_success_callback(api: httpx.Client) -> None:
    product_id = new_product(api)

    api.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL)

    category_becomes(api, product_id, "kitchen-restock-notified")


def test_worker_runs_the_failure_callback(api: httpx.Client) -> None:
    product_id = new_product(api)

    api.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL | {"forceFail": True})

    category_becomes(api, product_id, "kitchen-restock-failed")
