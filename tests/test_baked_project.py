"""The default bake, installed with uv: its checks pass and `make run` serves the job flow."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import httpx
import pytest

from tests.conftest import run_make, uv_executable
from tests.stack import (
    PG_ADMIN,
    PG_HOST,
    PG_PORT,
    admin_connection,
    free_port,
    private_redis,
    wait_for,
)


@pytest.mark.parametrize("target", ["lint", "typecheck"])
def test_baked_project_passes_its_own_checks(default_project: Path, target: str) -> None:
    result = run_make(default_project, target)

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def test_baked_tests_pass_integration_included(default_project: Path) -> None:
    """Its own suite, integration tests on this machine's PostgreSQL and a private Redis."""
    admin_connection().close()
    with private_redis() as redis_port:
        result = run_make(
            default_project,
            "test",
            env={
                "INTEGRATION_DATABASE_URL": f"postgresql+asyncpg://{PG_ADMIN}@{PG_HOST}:{PG_PORT}/postgres",
                "INTEGRATION_REDIS_URL": f"redis://127.0.0.1:{redis_port}",
            },
        )

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "skipped" not in result.stdout.splitlines()[-1]


def answers_health(base_url: str, server: subprocess.Popen[str]) -> bool:
    if server.poll() is not None:
        pytest.fail(f"make run exited with {server.returncode} before serving")
    try:
        return httpx.get(f"{base_url}/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def served(default_project: Path) -> Iterator[httpx.Client]:
    """`make run` on a free port; its whole process group is stopped afterwards."""
    port = free_port()
    server = subprocess.Popen(
        [
            "make",
            "--no-print-directory",
            "-C",
            str(default_project),
            "run",
            f"PORT={port}",
            f"UV={uv_executable()}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for(partial(answers_health, base_url, server), "make run to answer /health")
        with httpx.Client(base_url=base_url, timeout=10) as client:
            yield client
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def test_make_run_serves_the_restock_flow_over_http(served: httpx.Client) -> None:
    product = {
        "sku": "KET-RUN",
        "name": "Kettle",
        "category": "kitchen",
        "priceCents": 2599,
        "stock": 0,
    }
    created = served.post("/products/", json=product)
    assert created.status_code == 201, created.text
    product_id = created.json()["id"]

    accepted = served.post(
        f"/products/{product_id}/jobs/restock-email", json={"recipientEmail": "a@b.co"}
    )

    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["queue"] == "notifications"
    assert served.get(f"/products/{product_id}").json()["category"] == "kitchen-restock-notified"
    summary = served.get(f"/products/{product_id}/jobs/summary")
    assert summary.status_code == 200
    assert (
        summary.json()["summary"]
        == "Kettle (KET-RUN) in kitchen-restock-notified: 0 in stock at 25.99"
    )


def test_make_run_serves_the_api_docs(served: httpx.Client) -> None:
    assert served.get("/docs").status_code == 200
