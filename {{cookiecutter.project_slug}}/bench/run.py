"""The ``make bench`` driver: seed, start, measure in interleaved rounds, report, clean up.

Without ``API_URL`` / ``BASELINE_URL`` it starts the service (API and worker, production
settings) and the baseline as local processes against the PostgreSQL and broker that
``DATABASE_URL`` and ``CELERY_BROKER_URL`` name (``make bench`` takes them from .env,
as ``make run-api`` does). Every round runs each measurement on the service, then on the
baseline (the order swaps each round), so machine noise hits both sides alike. Its own
rows carry a per-run SKU prefix and are deleted at the end, also after a failure.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import asyncpg
import httpx
from kombu import Connection
from kombu.exceptions import ChannelError

from bench.baseline_worker import QUEUE as BASELINE_QUEUE
from bench.baseline_worker import SUFFIX
from bench.load import Request, Sample, hammer
from bench.processes import Started, StartError, free_port, start_all

PACKAGE = "{{ cookiecutter.package_name }}"
SERVICE_QUEUES = "{{ cookiecutter.queues }}"
EMAIL = {"recipientEmail": "bench@example.com"}
JOB_TIMEOUT = 30.0  # seconds a job may take before the run counts it as failed
DRAIN_TIMEOUT = 120.0


@dataclass(frozen=True)
class Plan:
    """How much to measure: QUICK=1 keeps the whole run under a minute."""

    rounds: int
    seconds: float  # per HTTP measurement and side
    connections: int
    round_trips: int  # per round and side
    burst: int  # jobs per throughput measurement
    held_seconds: float  # per held-load scenario, on the service
    held_connections: int = 100

    @classmethod
    def from_environment(cls) -> Plan:
        connections = int(os.environ.get("CONNECTIONS", "10"))
        if os.environ.get("QUICK", "") not in ("", "0"):
            return cls(2, 1.0, connections, round_trips=5, burst=20, held_seconds=2.0)
        return cls(5, 5.0, connections, round_trips=20, burst=200, held_seconds=30.0)


@dataclass
class Side:
    """The service or the baseline: where it answers and what was measured on it."""

    name: str
    url: str
    queues: list[str]
    processes: dict[str, Started] = field(default_factory=dict)
    http: dict[str, Sample] = field(default_factory=dict)
    round_trips: Sample = field(default_factory=Sample)
    throughput: list[float] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)
    held: list[Sample] = field(default_factory=list)
    # Measured on the dispatch and round trip only (the outbox's price), or on everything.
    dispatch_only: bool = False


class Progress:
    def __init__(self) -> None:
        self.began = time.perf_counter()

    def __call__(self, message: str) -> None:
        print(f"[{time.perf_counter() - self.began:5.1f}s] {message}", flush=True)


def required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        sys.exit(f"{name} is not set: run `make bench`, which takes it from .env")
    return value


def writer_token(env: dict[str, str]) -> str:
    """A writer's bearer token from the project's own ``python -m <package>.auth``."""
    made = subprocess.run(
        [sys.executable, "-m", f"{PACKAGE}.auth", "--roles", "writer"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if made.returncode != 0:
        sys.exit(f"could not make a token: {made.stderr}")
    return made.stdout.strip()


class Rows:
    """This run's rows: SKUs ``bench-<run>-...``; ids handed out one by one."""

    def __init__(self, db: asyncpg.Connection, run: str) -> None:
        self.db, self.prefix = db, f"bench-{run}-"
        self.read_ids: list[int] = []
        self.job_ids: Iterator[int] = iter(())
        self.dispatch_id = 0
        self.created = itertools.count()  # SKUs of the create measurement, unique per run

    async def seed(self, reads: int, jobs: int) -> None:
        rows = [
            (f"{self.prefix}{n}", "bench product", "bench", 1999, 0 if n >= reads + 1 else 5)
            for n in range(reads + 1 + jobs)
        ]
        await self.db.copy_records_to_table(
            "products",
            records=rows,
            columns=["sku", "name", "category", "price_cents", "stock"],
        )
        ids = [
            record["id"]
            for record in await self.db.fetch(
                "SELECT id FROM products WHERE sku LIKE $1 ORDER BY id", self.prefix + "%"
            )
        ]
        self.dispatch_id, self.read_ids = ids[0], ids[1 : reads + 1]
        self.job_ids = iter(ids[reads + 1 :])

    async def tagged(self, ids: list[int]) -> int:
        count: int = await self.db.fetchval(
            "SELECT count(*) FROM products WHERE id = ANY($1) AND category LIKE $2",
            ids,
            "%" + SUFFIX,
        )
        return count

    async def remove(self, outbox_ids: list[str]) -> None:
        mine = "SELECT id FROM products WHERE sku LIKE $1"
        await self.db.execute(
            f"DELETE FROM restock_notifications WHERE product_id IN ({mine})", self.prefix + "%"
        )
        await self.db.execute("DELETE FROM outbox WHERE id = ANY($1)", outbox_ids)
        await self.db.execute("DELETE FROM products WHERE sku LIKE $1", self.prefix + "%")


def http_scenarios(rows: Rows, side: Side) -> dict[str, Request]:
    """The requests each HTTP measurement repeats, the same paths on both sides."""

    async def get_by_id(client: httpx.AsyncClient, n: int) -> httpx.Response:
        return await client.get(f"/products/{rows.read_ids[n % len(rows.read_ids)]}")

    async def list_page(client: httpx.AsyncClient, n: int) -> httpx.Response:
        return await client.get("/products/", params={"page": 1, "limit": 20})

    async def create(client: httpx.AsyncClient, n: int) -> httpx.Response:
        sku = f"{rows.prefix}c{next(rows.created)}"
        body = {"sku": sku, "name": "bench", "category": "bench", "priceCents": 1, "stock": 1}
        return await client.post("/products/", json=body)

    async def dispatch(client: httpx.AsyncClient, n: int) -> httpx.Response:
        # A product in stock: the job finds nothing to send, so the load is the dispatch.
        path = f"/products/{rows.dispatch_id}/jobs/restock-email"
        response = await client.post(path, json=EMAIL)
        if response.status_code == 202:
            side.job_ids.append(response.json()["jobId"])
        return response

    return {
        "GET /products/{id}": get_by_id,
        "GET /products/ (list page)": list_page,
        "POST /products/ (create)": create,
        DISPATCH: dispatch,
    }


def held_load_scenarios(rows: Rows, side: Side) -> dict[str, Request]:
    """What the service must hold at many connections: reads alone, then four reads to
    one create."""
    scenarios = http_scenarios(rows, side)
    get_by_id, create = scenarios["GET /products/{id}"], scenarios["POST /products/ (create)"]

    async def mixed(client: httpx.AsyncClient, n: int) -> httpx.Response:
        return await (create if n % 5 == 4 else get_by_id)(client, n)

    return {"GET /products/{id}": get_by_id, "reads and creates, 4 to 1": mixed}


async def hold_load(plan: Plan, side: Side, rows: Rows, token: str, say: Progress) -> list[str]:
    """Each held-load scenario on ``side``; one line per scenario, its failures kept."""
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=plan.held_connections)
    lines = []
    async with httpx.AsyncClient(
        base_url=side.url, headers=headers, limits=limits, timeout=30
    ) as client:
        for label, request in held_load_scenarios(rows, side).items():
            say(f"held load: {plan.held_connections} connections, {label}")
            sample = await hammer(client, request, plan.held_connections, plan.held_seconds)
            side.held.append(sample)
            server_errors = sum(failure.startswith("5") for failure in sample.failures)
            lines.append(
                f"held load, {side.name}, {plan.held_connections} connections for "
                f"{plan.held_seconds:.0f} s, {label}: {len(sample.latencies)} answered "
                f"({sample.rate():.0f} req/s, p99 {sample.percentile(0.99):.0f} ms), "
                f"{len(sample.failures)} failed, {server_errors} with a 5xx"
            )
    return lines


async def round_trip(client: httpx.AsyncClient, rows: Rows, side: Side) -> None:
    """Dispatch over HTTP until the success callback's UPDATE is visible in PostgreSQL."""
    product_id = next(rows.job_ids)
    began = time.perf_counter()
    response = await client.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL)
    if response.status_code != 202:
        side.round_trips.failures.append(f"{response.status_code} {response.text[:200]}")
        return
    side.job_ids.append(response.json()["jobId"])
    while not await rows.tagged([product_id]):
        if time.perf_counter() - began > JOB_TIMEOUT:
            side.round_trips.failures.append(f"job for product {product_id} never finished")
            return
        await asyncio.sleep(0.001)
    side.round_trips.latencies.append(time.perf_counter() - began)


async def burst(client: httpx.AsyncClient, rows: Rows, side: Side, size: int) -> None:
    """``size`` jobs dispatched at once; jobs/s until the last one's UPDATE is visible."""
    ids = [next(rows.job_ids) for _ in range(size)]
    began = time.perf_counter()
    limit = asyncio.Semaphore(10)

    async def send(product_id: int) -> None:
        async with limit:
            response = await client.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL)
        if response.status_code == 202:
            side.job_ids.append(response.json()["jobId"])
        else:
            side.round_trips.failures.append(f"{response.status_code} {response.text[:200]}")

    await asyncio.gather(*(send(product_id) for product_id in ids))
    while await rows.tagged(ids) < size:
        if time.perf_counter() - began > JOB_TIMEOUT * 4:
            side.round_trips.failures.append(f"a burst of {size} jobs never finished")
            return
        await asyncio.sleep(0.01)
    side.throughput.append(size / (time.perf_counter() - began))


def queued(broker_url: str, queues: list[str]) -> int:
    """Messages waiting in ``queues`` (Redis or RabbitMQ alike, through kombu)."""
    total = 0
    with Connection(broker_url, connect_timeout=5) as connection:
        for queue in queues:
            try:
                total += connection.default_channel.queue_declare(queue, passive=True).message_count
            except ChannelError:  # never declared, or emptied and gone (Redis)
                continue
    return total


async def drained(broker_url: str, side: Side) -> None:
    """Wait for the jobs a dispatch load queued: they must not slow the next measurement."""
    deadline = time.perf_counter() + DRAIN_TIMEOUT
    while queued(broker_url, side.queues):
        if time.perf_counter() > deadline:
            side.round_trips.failures.append("the dispatched jobs were never consumed")
            return
        await asyncio.sleep(0.1)


@dataclass(frozen=True)
class Launch:
    """What to start for a side that was given no URL."""

    side: Side
    app: str
    worker: list[str] | None  # None: its jobs go to another side's worker


def start_sides(launches: list[Launch], env: dict[str, str], logs: Path) -> None:
    """Every side's API together, then the workers: less wait, the same noise on all."""
    apis = []
    for launch in launches:
        port = free_port()
        launch.side.url = f"http://127.0.0.1:{port}"
        command = ["-m", "uvicorn", launch.app, "--host", "127.0.0.1", "--port", str(port)]
        ready = f"{launch.side.url}/health"
        apis.append((launch.side, "api", [sys.executable, *command], ready))
    workers = [
        (
            launch.side,
            "worker",
            [sys.executable, "-m", "celery", *launch.worker, f"--hostname={launch.side.name}@%h"],
            " ready.",
        )
        for launch in launches
        if launch.worker is not None
    ]
    for group in (apis, workers):
        started = start_all(
            [(f"{side.name}-{kind}", command, ready) for side, kind, command, ready in group],
            env,
            logs,
        )
        for (side, kind, _, _), process in zip(group, started, strict=True):
            side.processes[kind] = process


def rounds(sides: list[Side], n: int) -> Iterator[tuple[int, list[Side]]]:
    """Round ``r`` with the sides in the order it measures them: reversed every round."""
    for r in range(n):
        yield r, sides if r % 2 == 0 else sides[::-1]


async def measure(plan: Plan, sides: list[Side], rows: Rows, token: str, say: Progress) -> None:
    broker_url = required("CELERY_BROKER_URL")
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=plan.connections)
    clients = {
        side.name: httpx.AsyncClient(base_url=side.url, headers=headers, limits=limits, timeout=30)
        for side in sides
    }
    try:
        for r, ordered in rounds(sides, plan.rounds):
            for side in ordered:
                for _ in range(plan.round_trips):
                    await round_trip(clients[side.name], rows, side)
                if not side.dispatch_only:
                    await burst(clients[side.name], rows, side, plan.burst)
            say(f"round {r + 1}/{plan.rounds} jobs: " + report_jobs(sides))
        for r, ordered in rounds(sides, plan.rounds):
            for side in ordered:
                for label, request in http_scenarios(rows, side).items():
                    if side.dispatch_only and label != DISPATCH:
                        continue
                    sample = await hammer(
                        clients[side.name], request, plan.connections, plan.seconds
                    )
                    side.http.setdefault(label, Sample()).add(sample)
                    rate = f"{sample.rate():.0f} req/s"
                    say(f"round {r + 1}/{plan.rounds} {side.name:8} {label}: {rate}")
                await drained(broker_url, side)
    finally:
        for client in clients.values():
            await client.aclose()


def report_jobs(sides: list[Side]) -> str:
    return ", ".join(
        f"{side.name} round trip p50 {side.round_trips.percentile(0.5):.1f} ms" for side in sides
    )


Row = tuple[str, Callable[[Side], float | None]]


def table_rows(labels: list[str]) -> list[Row]:
    rows: list[Row] = []
    for label in labels:
        rows += [
            (f"{label} req/s", partial(http_rate, label)),
            (f"{label} p50 ms", partial(http_percentile, label, 0.5)),
            (f"{label} p99 ms", partial(http_percentile, label, 0.99)),
        ]
    return [
        *rows,
        ("job round trip p50 ms", lambda side: side.round_trips.percentile(0.5)),
        ("job round trip p90 ms", lambda side: side.round_trips.percentile(0.9)),
        ("worker throughput jobs/s", lambda side: median(side.throughput)),
        ("API start-up s", lambda side: startup(side, "api")),
        ("worker start-up s", lambda side: startup(side, "worker")),
        ("API RSS MB", lambda side: rss(side, "api")),
        ("worker RSS MB (with children)", lambda side: rss(side, "worker")),
    ]


def http_rate(label: str, side: Side) -> float:
    return side.http[label].rate()


def http_percentile(label: str, share: float, side: Side) -> float:
    return side.http[label].percentile(share)


def median(values: list[float]) -> float | None:
    return sorted(values)[len(values) // 2] if values else None


def startup(side: Side, name: str) -> float | None:
    started = side.processes.get(name)
    return started.startup_seconds if started else None


def rss(side: Side, name: str) -> float | None:
    started = side.processes.get(name)
    return started.rss_mb() if started else None


def table(rows: list[Row], ours: Side, theirs: Side) -> str:
    def cell(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1f}"

    width = max(len(label) for label, _ in rows)
    lines = [f"{'':{width}} | {ours.name:>9} | {theirs.name:>9} | {'ratio':>6}"]
    lines.append("-" * len(lines[0]))
    for label, value in rows:
        mine, other = value(ours), value(theirs)
        ratio = f"{mine / other:.2f}" if mine is not None and other else "n/a"
        lines.append(f"{label:{width}} | {cell(mine):>9} | {cell(other):>9} | {ratio:>6}")
    lines.append(
        f"ratio = {ours.name} / {theirs.name}: above 1 is better for req/s and jobs/s, "
        "worse for the rest"
    )
    return "\n".join(lines)


DISPATCH = "POST .../jobs/restock-email (dispatch)"


def outbox_cost_rows() -> list[Row]:
    """The dispatch and the job it starts, with and without the outbox: its price."""
    return [
        ("outbox cost, dispatch req/s", partial(http_rate, DISPATCH)),
        ("outbox cost, dispatch p50 ms", partial(http_percentile, DISPATCH, 0.5)),
        ("outbox cost, dispatch p99 ms", partial(http_percentile, DISPATCH, 0.99)),
        ("outbox cost, job round trip p50 ms", lambda side: side.round_trips.percentile(0.5)),
        ("outbox cost, job round trip p90 ms", lambda side: side.round_trips.percentile(0.9)),
    ]


async def bench(plan: Plan, say: Progress) -> int:
    database_url = required("DATABASE_URL")
    required("CELERY_BROKER_URL")
    # The image's settings (Dockerfile), keep-alive included: the held load reuses connections.
    env = os.environ | {
        "LOOM_ENV": "production",
        "PYTHONUNBUFFERED": "1",
        "UVICORN_TIMEOUT_KEEP_ALIVE": "75",
    }
    run = secrets.token_hex(3)
    service = Side("service", os.environ.get("API_URL", ""), SERVICE_QUEUES.split(","))
    baseline = Side("baseline", os.environ.get("BASELINE_URL", ""), [BASELINE_QUEUE])
    # Priced only when the service runs here: it shares the service's worker.
    no_outbox = Side("no-outbox", "", SERVICE_QUEUES.split(","), dispatch_only=True)
    sides = [service, baseline] if service.url else [service, baseline, no_outbox]
    db = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    rows = Rows(db, run)
    logs = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    try:
        say(f"run {run}: {plan}; process logs in {logs}")
        await rows.seed(reads=100, jobs=len(sides) * plan.rounds * (plan.round_trips + plan.burst))
        launches = []
        if not service.url:
            # The stack's worker command (docker-compose.yml), every queue.
            worker = ["-A", f"{PACKAGE}.worker_main:celery_app", "worker", "-E", "--loglevel=INFO"]
            worker.append(f"--queues={SERVICE_QUEUES}")
            launches.append(Launch(service, f"{PACKAGE}.main:app", worker))
        if not baseline.url:
            # The same pool size as the service's worker (config/worker.yaml).
            worker = ["-A", "bench.baseline_worker:celery_app", "worker", "--loglevel=INFO"]
            worker += [f"--concurrency={env.get('WORKER_CONCURRENCY', '2')}"]
            worker.append(f"--queues={BASELINE_QUEUE}")
            launches.append(Launch(baseline, "bench.baseline_api:app", worker))
        if no_outbox in sides:
            launches.append(Launch(no_outbox, "bench.without_outbox:app", None))
        start_sides(launches, env, logs)
        say("started: " + ", ".join(f"{side.name} {side.url}" for side in sides))
        token = writer_token(env)
        await measure(plan, sides, rows, token, say)
        held = await hold_load(plan, service, rows, token, say)
        labels = list(service.http)
        print(table(table_rows(labels), service, baseline), flush=True)
        print("\n".join(held), flush=True)
        if no_outbox in sides:
            print(table(outbox_cost_rows(), service, no_outbox), flush=True)
        failures = [
            f
            for side in sides
            for sample in [side.round_trips, *side.http.values(), *side.held]
            for f in sample.failures
        ]
        if failures:
            print(
                f"{len(failures)} requests or jobs failed, the first: {failures[:5]}",
                file=sys.stderr,
            )
            return 1
        return 0
    except StartError as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        for side in sides:
            for started in side.processes.values():
                started.stop()
        await rows.remove(service.job_ids)
        await db.close()
        say("stopped what it started; its rows are removed")


def main() -> None:
    say = Progress()
    sys.exit(asyncio.run(bench(Plan.from_environment(), say)))
