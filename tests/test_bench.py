"""`make bench QUICK=1` on a baked project, against this machine's PostgreSQL and a private
Redis: the benchmark keeps working. Only that it runs and reports; no timing is asserted,
since numbers on a shared machine are the benchmark's business, not a test's."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.compose import read_env_file
from tests.conftest import bake_installed, run_make
from tests.stack import PG_ADMIN, PG_HOST, PG_PORT, Stack, private_database, private_redis

ROWS = (
    "GET /products/{id} req/s",
    "GET /products/{id} p50 ms",
    "GET /products/{id} p99 ms",
    "GET /products/ (list page) req/s",
    "GET /products/ (list page) p99 ms",
    "POST /products/ (create) req/s",
    "POST /products/ (create) p99 ms",
    "POST .../jobs/restock-email (dispatch) req/s",
    "POST .../jobs/restock-email (dispatch) p99 ms",
    "job round trip p50 ms",
    "job round trip p90 ms",
    "worker throughput jobs/s",
    "API start-up s",
    "worker start-up s",
    "API RSS MB",
    "worker RSS MB (with children)",
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bake_installed(tmp_path_factory.mktemp("bench"))


@pytest.fixture(scope="module")
def database(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private, migrated database and Redis written into the project's .env, as the
    stack's own would be; yields the database's name."""
    env = read_env_file(project / ".env")
    with private_redis(env["REDIS_PASSWORD"]) as redis_port, private_database(project) as made:
        name, login, password = made
        stack = Stack(project, redis_port, name, login, password, "", tmp_path_factory.mktemp("l"))
        migrated = stack.run("migrate")
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        env |= {
            "APP_DB_NAME": name,
            "APP_DB_USER": login,
            "APP_DB_PASSWORD": password,
            "POSTGRES_PORT": "5432",
            "REDIS_PORT": str(redis_port),
        }
        (project / ".env").write_text("".join(f"{key}={value}\n" for key, value in env.items()))
        yield name


@pytest.fixture(scope="module")
def quick_bench(project: Path, database: str) -> subprocess.CompletedProcess[str]:
    return run_make(project, "bench", env={"QUICK": "1"}, timeout=100)


def test_quick_bench_exits_without_error(quick_bench: subprocess.CompletedProcess[str]) -> None:
    assert quick_bench.returncode == 0, quick_bench.stdout[-3000:] + quick_bench.stderr[-3000:]
    assert "failed" not in quick_bench.stderr


def test_quick_bench_prints_every_row_with_both_sides_measured(
    quick_bench: subprocess.CompletedProcess[str],
) -> None:
    lines = quick_bench.stdout.splitlines()
    for row in ROWS:
        (line,) = [line for line in lines if line.startswith(row + " ")]
        _, service, baseline, ratio = (cell.strip() for cell in line.split("|"))
        assert "n/a" not in (service, baseline, ratio), line


OUTBOX_COST_ROWS = (
    "outbox cost, dispatch req/s",
    "outbox cost, dispatch p50 ms",
    "outbox cost, dispatch p99 ms",
    "outbox cost, job round trip p50 ms",
    "outbox cost, job round trip p90 ms",
)


def test_quick_bench_prices_the_outbox_against_the_same_service_without_it(
    quick_bench: subprocess.CompletedProcess[str],
) -> None:
    lines = quick_bench.stdout.splitlines()
    headers = [line.replace(" ", "") for line in lines if "|no-outbox|" in line.replace(" ", "")]
    assert headers == ["|service|no-outbox|ratio"]
    for row in OUTBOX_COST_ROWS:
        (line,) = [line for line in lines if line.startswith(row + " ")]
        _, service, without, ratio = (cell.strip() for cell in line.split("|"))
        assert "n/a" not in (service, without, ratio), line


def test_quick_bench_holds_100_connections_on_reads_and_creates_without_a_failure(
    quick_bench: subprocess.CompletedProcess[str],
) -> None:
    held = [line for line in quick_bench.stdout.splitlines() if line.startswith("held load, ")]

    assert len(held) == 2, quick_bench.stdout[-3000:]
    for line in held:
        assert "100 connections" in line
        assert line.endswith(" 0 failed, 0 with a 5xx"), line


def test_quick_bench_shows_progress_before_the_table(
    quick_bench: subprocess.CompletedProcess[str],
) -> None:
    lines = quick_bench.stdout.splitlines()
    header = next(
        n for n, line in enumerate(lines) if line.replace(" ", "").startswith("|service|")
    )

    assert any("round 1/" in line for line in lines[:header])


def test_quick_bench_removes_the_rows_it_made(
    quick_bench: subprocess.CompletedProcess[str], database: str
) -> None:
    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_ADMIN, dbname=database) as db:
        counts = {
            table: db.execute(f"SELECT count(*) FROM {table}").fetchone()
            for table in ("products", "restock_notifications", "outbox")
        }

    assert counts == {"products": (0,), "restock_notifications": (0,), "outbox": (0,)}
