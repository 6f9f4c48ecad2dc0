"""The default bake's `make up` in real containers: every service healthy, the job flow over
HTTP on the published ports, and the stack's own targets (`make ps`, `make logs`)."""

from __future__ import annotations

import json
import re
import time
import tomllib
from datetime import datetime

import httpx
import pytest
import redis

from tests.flows import (
    JOB_TIMEOUT,
    flower_lists_the_job_and_its_callback,
    flower_refuses_anonymous_requests,
    flower_tasks,
    forced_failure_is_retried_then_tagged,
    new_product,
    restock_email_tags_the_product,
)
from tests.real_stack import ComposeStack, run_smoke
from tests.stack import wait_for

APP_USER_ID = "10001"  # the Dockerfile's USER


@pytest.fixture
def stack(default_compose_stack: ComposeStack) -> ComposeStack:
    return default_compose_stack


def started_at(stack: ComposeStack, service: str, key: str = "StartedAt") -> datetime:
    # Docker gives nanoseconds; seconds and microseconds are enough to order events.
    stamp = re.sub(r"(\.\d{6})\d*", r"\1", stack.inspect(service)["State"][key])
    return datetime.fromisoformat(stamp)


def test_make_ps_shows_every_long_running_service_healthy(stack: ComposeStack) -> None:
    listed = stack.make("ps")

    assert listed.returncode == 0, listed.stderr
    for service in stack.long_running():
        # Container names: project_service_1 (docker-compose 1.29) or project-service-1.
        (line,) = [
            line for line in listed.stdout.splitlines() if re.search(rf"[-_]{service}[-_]1", line)
        ]
        assert "(healthy)" in line, listed.stdout


def test_migrate_runs_once_and_exits_0_before_the_api_and_worker_start(
    stack: ComposeStack,
) -> None:
    migrate = stack.inspect("migrate")

    assert migrate["State"]["Status"] == "exited"
    assert migrate["State"]["ExitCode"] == 0
    assert migrate["RestartCount"] == 0
    finished = started_at(stack, "migrate", "FinishedAt")
    assert finished < started_at(stack, "api")
    assert finished < started_at(stack, "worker")


@pytest.mark.parametrize("service", ["api", "worker", "migrate"])
def test_service_image_runs_as_the_non_root_user(stack: ComposeStack, service: str) -> None:
    assert stack.inspect(service)["Config"]["User"].split(":")[0] == APP_USER_ID
    if service != "migrate":
        assert stack.exec(service, "id", "-u").stdout.strip() == APP_USER_ID


def test_image_holds_exactly_the_versions_of_the_lock_file(stack: ComposeStack) -> None:
    listed = stack.exec(
        "api",
        "python",
        "-c",
        "import importlib.metadata as m, json;"
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))",
    )
    installed = {
        re.sub(r"[-_.]+", "-", name).lower(): version
        for name, version in json.loads(listed.stdout).items()
    }
    locked = {
        package["name"]: package["version"]
        for package in tomllib.loads((stack.project / "uv.lock").read_text())["package"]
    }

    assert "loom-kernel" in installed
    assert {name: locked.get(name) for name in installed} == installed


def test_restock_email_runs_on_the_worker_and_its_callback_tags_the_product(
    api: httpx.Client,
) -> None:
    restock_email_tags_the_product(api)


def test_forced_failure_is_retried_then_the_failure_callback_tags_the_product(
    api: httpx.Client, flower: httpx.Client
) -> None:
    forced_failure_is_retried_then_tagged(api, flower)


def test_summary_is_computed_in_the_api_process(api: httpx.Client, flower: httpx.Client) -> None:
    product_id = new_product(api, name="Lamp", sku=f"LAMP-{time.time_ns()}", stock=2)

    response = api.get(f"/products/{product_id}/jobs/summary")

    assert response.status_code == 200
    assert response.json()["summary"].startswith("Lamp (LAMP-")
    assert flower_tasks(flower, "loom.job.BuildProductSummaryJob") == {}


def test_erp_sync_runs_on_the_worker_after_its_countdown(
    api: httpx.Client, flower: httpx.Client
) -> None:
    product_id = new_product(api)
    sent_at = time.time()

    accepted = api.post("/products/jobs/sync-erp", json={"productIds": [product_id]})

    assert accepted.status_code == 202
    (job_id,) = accepted.json()["jobIds"]

    def task() -> dict[str, object]:
        found: dict[str, object] = flower_tasks(flower, "loom.job.SyncProductToErpJob").get(
            job_id, {}
        )
        return found

    wait_for(lambda: task().get("state") == "SUCCESS", "the ERP sync to succeed", JOB_TIMEOUT)
    started = task()["started"]
    assert isinstance(started, float)
    assert started - sent_at >= 4.5  # countdown: 5 s in jobs.yaml


def test_flower_refuses_requests_without_credentials(stack: ComposeStack) -> None:
    flower_refuses_anonymous_requests(stack.url("flower"))


def test_flower_lists_the_job_and_callback_tasks(api: httpx.Client, flower: httpx.Client) -> None:
    flower_lists_the_job_and_its_callback(api, flower)


def test_smoke_flow_of_the_generated_ci_passes_against_the_stack(stack: ComposeStack) -> None:
    smoke = run_smoke(stack, flower=True)

    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    assert "job flow ok" in smoke.stdout
    assert "Flower ok" in smoke.stdout


def test_make_logs_shows_a_service_output(stack: ComposeStack) -> None:
    # Follows until the service stops: migrate has, so the command ends.
    logs = stack.make("logs", "SERVICE=migrate", timeout=60)

    assert logs.returncode == 0, logs.stderr
    assert "alembic.runtime.migration" in logs.stdout


def test_make_up_again_on_the_running_stack_succeeds(stack: ComposeStack) -> None:
    again = stack.make("up")

    assert again.returncode == 0, again.stdout + again.stderr
    assert "is in use" not in again.stderr
    stack.wait_until_healthy("every service to stay healthy", timeout=120)


def test_redis_in_its_container_refuses_a_client_without_the_password(
    stack: ComposeStack,
) -> None:
    port = int(stack.variables()["REDIS_PORT"])

    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=port, socket_connect_timeout=3).ping()
    assert redis.Redis(port=port, password=stack.variables()["REDIS_PASSWORD"]).ping()


def test_api_in_its_container_refuses_an_anonymous_read(stack: ComposeStack) -> None:
    assert httpx.get(f"{stack.url('api')}/products/", timeout=10).status_code == 401
