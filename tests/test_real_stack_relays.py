"""Two API replicas in real containers, each running its outbox relay over the same table:
the backlog the broker outage left is published once, by whichever relay locks each row."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from tests.broker_outage import DISPATCHES_WHILE_DOWN, all_tagged
from tests.flows import EMAIL, new_product
from tests.real_stack import ComposeStack, docker, record
from tests.stack import wait_for
from tests.test_real_stack_scaling import runs_by_container

RELAY_PUBLISHED = re.compile(r"relay published (\d+) pending job")
RELAY_RETRYING = "relay retrying"


@pytest.fixture
def stack(default_compose_stack: ComposeStack) -> ComposeStack:
    return default_compose_stack


@pytest.fixture
def second_api(stack: ComposeStack) -> Iterator[str]:
    """One more API container on the stack's network, as a second replica behind a load
    balancer would be (it publishes no host port: the first one holds it)."""
    container = f"{stack.name}-second-api"
    started = stack.compose("run", "-d", "--no-deps", "--name", container, "api")
    assert started.returncode == 0, started.stderr
    try:
        wait_for(lambda: health(container) == "healthy", "the second API replica", 120)
        yield container
    finally:
        docker("rm", "-f", container)


def health(container: str) -> str:
    return docker("inspect", "--format", "{{.State.Health.Status}}", container).stdout.strip()


def name(container: str) -> str:
    return docker("inspect", "--format", "{{.Name}}", container).stdout.strip().lstrip("/")


def logs_since(container: str, since: float) -> str:
    logged = docker("logs", "--since", f"{since:.3f}", container)
    return logged.stdout + logged.stderr


def test_two_api_replicas_relay_the_outage_backlog_once(
    stack: ComposeStack, api: httpx.Client, second_api: str
) -> None:
    (first_api,) = [c for c in stack.containers("api") if name(c) != second_api]
    replicas = [first_api, second_api]
    product_ids = [new_product(api) for _ in range(DISPATCHES_WHILE_DOWN)]
    stopped = time.time()
    assert docker("stop", stack.container("redis")).returncode == 0
    job_ids = set()
    for product_id in product_ids:
        accepted = api.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL)
        assert accepted.status_code == 202, accepted.text
        job_ids.add(accepted.json()["jobId"])
    dispatched = time.time()
    # Both relays found the backlog and the broker down, the first one after the last
    # dispatch: the publishes tried right after the commits (on the same thread, first in
    # first out) have all given up by then, so from here on only relays publish.
    wait_for(
        lambda: RELAY_RETRYING in logs_since(replicas[0], dispatched),
        "the first replica's relay to find the broker down after the dispatches",
        timeout=60,
    )
    wait_for(
        lambda: RELAY_RETRYING in logs_since(replicas[1], stopped),
        "the second replica's relay to find the backlog with the broker down",
        timeout=60,
    )
    assert docker("start", stack.container("redis")).returncode == 0
    back = time.monotonic()
    wait_for(lambda: all_tagged(api, product_ids), "every job's callback", timeout=90)
    record("two API replicas: redis back to the backlog's callbacks", time.monotonic() - back)
    published = {
        replica: sum(map(int, RELAY_PUBLISHED.findall(logs_since(replica, dispatched))))
        for replica in replicas
    }
    assert sum(published.values()) == DISPATCHES_WHILE_DOWN, published
    total = sum(runs_by_container(stack).values(), Counter())
    assert {job_id: total[job_id] for job_id in job_ids} == dict.fromkeys(job_ids, 1)
