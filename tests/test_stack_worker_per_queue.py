"""worker_per_queue=yes on the real stack: each queue is served by its own worker."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import bake_installed
from tests.flows import EMAIL, JOB_TIMEOUT, category_becomes, flower_tasks, new_product
from tests.stack import Stack, running_stack, wait_for


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    project = bake_installed(tmp_path_factory.mktemp("per-queue"), worker_per_queue="yes")
    with running_stack(
        project, tmp_path_factory.mktemp("per-queue-logs"), worker_queues=""
    ) as running:
        yield running


def test_stack_has_one_worker_service_per_queue(stack: Stack) -> None:
    workers = sorted(name for name in stack.services if name.startswith("worker"))

    assert workers == ["worker-analytics", "worker-default", "worker-erp", "worker-notifications"]


def test_erp_job_is_run_by_the_erp_worker(api: httpx.Client, flower: httpx.Client) -> None:
    product_id = new_product(api)

    (job_id,) = api.post("/products/jobs/sync-erp", json={"productIds": [product_id]}).json()[
        "jobIds"
    ]

    def succeeded() -> bool:
        task = flower_tasks(flower, "loom.job.SyncProductToErpJob").get(job_id, {})
        return str(task.get("state")) == "SUCCESS"

    wait_for(succeeded, "the ERP sync job to succeed", timeout=JOB_TIMEOUT)
    task = flower_tasks(flower, "loom.job.SyncProductToErpJob")[job_id]
    assert task["worker"] == f"erp@{socket.gethostname()}"


def test_restock_flow_runs_with_callbacks_on_the_default_queue_worker(api: httpx.Client) -> None:
    product_id = new_product(api)

    api.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL)

    category_becomes(api, product_id, "kitchen-restock-notified")
