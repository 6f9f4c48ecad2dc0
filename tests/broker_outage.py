"""A broker stopped under load in real containers, for either broker: dispatches keep being
answered at once, reads keep answering, and every job and its callback are done soon
after the broker is back. The outbox is what makes it so."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

from tests.flows import EMAIL, new_product
from tests.real_stack import ComposeStack, docker, record
from tests.stack import wait_for

# The acceptance bar: with the broker stopped, every dispatch is still answered at once,
# and once it is back every job and its callback are done within this many seconds. A
# worker retries its connection after 2, 4, 6 ... s (Celery's fixed backoff, at most 30
# s apart), so after an outage as short as this one it reconnects within seconds.
DISPATCHES_WHILE_DOWN = 20
# Seconds: a dispatch's p99 with the broker up, under make bench's ten connections, is
# about 0.2 s here; one waiting on a dead broker's connect timeout would take 1 s or more.
DISPATCH_LATENCY_LIMIT = 0.5
CATCH_UP_LIMIT = 15.0
RENAMED = "Renamed while the broker was down"


class Reader:
    """Reads a product every 0.2 s in a thread, recording each status (0: no answer)."""

    def __init__(self, stack: ComposeStack, api: httpx.Client, product_id: int) -> None:
        self.statuses: list[int] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(stack.url("api"), api.headers))
        self._path = f"/products/{product_id}"

    def _read(self, url: str, headers: httpx.Headers) -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=5) as reader:
            while not self._done.is_set():
                try:
                    self.statuses.append(reader.get(self._path).status_code)
                except httpx.TransportError:
                    self.statuses.append(0)
                time.sleep(0.2)

    def __enter__(self) -> Reader:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join(timeout=10)


def all_tagged(api: httpx.Client, product_ids: list[int]) -> bool:
    return all(
        api.get(f"/products/{product_id}").json()["category"] == "kitchen-restock-notified"
        for product_id in product_ids
    )


def passes_its_healthcheck(stack: ComposeStack, service: str) -> bool:
    """``service``'s own compose healthcheck, run now: the broker is back when it passes
    (RabbitMQ boots for seconds after its container starts; Redis at once)."""
    kind, *command = stack.inspect(service)["Config"]["Healthcheck"]["Test"]
    argv = ["sh", "-c", *command] if kind == "CMD-SHELL" else command
    return docker("exec", stack.container(service), *argv, timeout=30).returncode == 0


@dataclass(frozen=True)
class Outage:
    """What the API did while the broker was down, and how long the catch-up took."""

    latencies: list[float]
    backlog: dict[str, Any]
    reads: list[int]
    api_restarted: bool
    # The name of a product renamed while the broker was down, read once it is back:
    # with Redis, the cache's invalidation waited in the API for Redis to return.
    name_read_after: str


def dispatch_through_an_outage(stack: ComposeStack, api: httpx.Client, broker: str) -> Outage:
    """Stop the ``broker`` service, dispatch a restock email for each of 20 products, start
    it again and wait (up to the bar) for every callback; the measurements are recorded."""
    product_ids = [new_product(api) for _ in range(DISPATCHES_WHILE_DOWN)]
    started_before = stack.inspect("api")["State"]["StartedAt"]
    latencies: list[float] = []
    with Reader(stack, api, product_ids[0]) as reader:
        assert docker("stop", stack.container(broker)).returncode == 0
        for product_id in product_ids:
            started = time.monotonic()
            response = api.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL)
            latencies.append(time.monotonic() - started)
            assert response.status_code == 202, response.text
        backlog = api.get("/health").json()["outbox"]
        renamed = api.patch(f"/products/{product_ids[0]}", json={"name": RENAMED})
        assert renamed.status_code == 200, renamed.text
        reads = list(reader.statuses)
        assert docker("start", stack.container(broker)).returncode == 0
        starting = time.monotonic()
        wait_for(lambda: passes_its_healthcheck(stack, broker), f"{broker} to be back", 120)
        back = time.monotonic()
        record(f"{broker} start: container started to answering its healthcheck", back - starting)
        wait_for(
            lambda: all_tagged(api, product_ids),
            f"every job and its callback after {broker} is back",
            timeout=CATCH_UP_LIMIT,
        )
        record(
            f"{broker} back: start to all {DISPATCHES_WHILE_DOWN} callbacks landed",
            time.monotonic() - back,
        )
    record(f"{broker} down: slowest of {DISPATCHES_WHILE_DOWN} dispatches answered", max(latencies))
    restarted = stack.inspect("api")["State"]["StartedAt"] != started_before
    name_read_after = api.get(f"/products/{product_ids[0]}").json()["name"]
    return Outage(latencies, backlog, reads, restarted, name_read_after)


def assert_nothing_was_held_or_lost(outage: Outage) -> None:
    assert max(outage.latencies) < DISPATCH_LATENCY_LIMIT
    assert outage.backlog["pending"] >= DISPATCHES_WHILE_DOWN
    assert outage.reads
    assert set(outage.reads) == {200}
    assert not outage.api_restarted
    assert outage.name_read_after == RENAMED
