"""Another combination in real containers: one worker per queue, no Flower, the manifest
bootstrap. `make up`, the job flow over HTTP, then `make down`."""

from __future__ import annotations

import httpx
import pytest

from tests.flows import EMAIL, JOB_TIMEOUT, category_becomes, new_product
from tests.real_stack import ComposeStack, run_smoke
from tests.stack import wait_for

QUEUES = ["analytics", "default", "erp", "notifications"]


@pytest.fixture
def stack(per_queue_compose_stack: ComposeStack) -> ComposeStack:
    return per_queue_compose_stack


def test_stack_runs_one_healthy_worker_per_queue_and_no_flower(stack: ComposeStack) -> None:
    assert sorted(stack.long_running()) == sorted(
        ["api", "beat", "postgres", "redis", *(f"worker-{queue}" for queue in QUEUES)]
    )
    assert stack.all_healthy()


def test_restock_email_runs_and_its_callback_tags_the_product(api: httpx.Client) -> None:
    product_id = new_product(api)

    accepted = api.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL)

    assert accepted.status_code == 202
    category_becomes(api, product_id, "kitchen-restock-notified")


def test_forced_failure_ends_in_the_failure_callback_tag(api: httpx.Client) -> None:
    product_id = new_product(api)

    api.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL | {"forceFail": True})

    category_becomes(api, product_id, "kitchen-restock-failed")


def test_summary_is_computed_in_the_api_process(api: httpx.Client) -> None:
    product_id = new_product(api, name="Lamp")

    response = api.get(f"/products/{product_id}/jobs/summary")

    assert response.status_code == 200
    assert response.json()["summary"].startswith("Lamp (")


def test_erp_sync_is_run_by_the_erp_worker(stack: ComposeStack, api: httpx.Client) -> None:
    product_id = new_product(api)

    accepted = api.post("/products/jobs/sync-erp", json={"productIds": [product_id]})

    (job_id,) = accepted.json()["jobIds"]
    done = f"Task loom.job.SyncProductToErpJob[{job_id}] succeeded"
    wait_for(lambda: done in stack.logs("worker-erp"), "the erp worker to run it", JOB_TIMEOUT)
    assert all(done not in stack.logs(f"worker-{queue}") for queue in QUEUES if queue != "erp")


def test_smoke_flow_of_the_generated_ci_passes_without_flower(stack: ComposeStack) -> None:
    smoke = run_smoke(stack, flower=False)

    assert smoke.returncode == 0, smoke.stdout + smoke.stderr


# Last in this module: the fixture's own teardown runs `make down` again, harmlessly.
def test_make_down_removes_the_containers_and_the_volumes(stack: ComposeStack) -> None:
    down = stack.make("down", "ARGS=-v", timeout=300)

    assert down.returncode == 0, down.stderr
    assert stack.project_containers() == []
    assert stack.project_volumes() == []
