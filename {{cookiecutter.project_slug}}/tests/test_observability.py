"""Logs and metrics as deployed: the production API served by uvicorn in a process of its
own (SQLite, jobs inline), its output read line by line."""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from {{ cookiecutter.package_name }}.auth import READ_ROLES, issue_token
from {{ cookiecutter.package_name }}.runtime import create_api

from tests.conftest import PROJECT_ROOT

STARTUP_TIMEOUT = 30.0
UVICORN = (sys.executable, "-m", "uvicorn", "{{ cookiecutter.package_name }}.main:app")
PRODUCT = {"sku": "LOG-1", "name": "Kettle", "category": "kitchen", "priceCents": 1, "stock": 0}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class Served:
    """The production API on a loopback port, a client holding a writer's token, its log."""

    client: httpx.Client
    log: Path

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines()

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines()]

    def settled_lines(self) -> list[str]:
        """The log once it has stopped growing (uvicorn writes the access line after the
        response has gone out)."""
        before, after = -1, len(self.lines())
        while before != after:
            time.sleep(0.1)
            before, after = after, len(self.lines())
        return self.lines()


@pytest.fixture(scope="module")
def production_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp("production")
    secret = secrets.token_urlsafe(48)
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("LOOM", "JOB_"))
    } | {
        "LOOM_ENV": "production",
        "LOOM_CONFIG_DIR": str(PROJECT_ROOT / "config"),
        "DATABASE_URL": f"sqlite+aiosqlite:///{directory / 'service.db'}",
        "JWT_SECRET": secret,
        "CURSOR_KEY_K1": base64.b64encode(secrets.token_bytes(32)).decode(),
    }
    port = free_port()
    log = directory / "api.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [*UVICORN, "--host", "127.0.0.1", "--port", str(port)],
            cwd=PROJECT_ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not _answers(base_url):
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"no answer on {base_url}:\n{log.read_text()}"
            time.sleep(0.1)
        os.environ["JWT_SECRET"], saved = secret, os.environ.get("JWT_SECRET")
        try:
            token = issue_token(READ_ROLES)
        finally:
            os.environ.pop("JWT_SECRET") if saved is None else os.environ.update(JWT_SECRET=saved)
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
            yield Served(client, log)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=15)


def _answers(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="module")
def product_id(production_api: Served) -> int:
    created = production_api.client.post("/products/", json=PRODUCT)
    assert created.status_code == 201, created.text
    identifier: int = created.json()["id"]
    return identifier


def test_production_writes_every_line_as_json_with_level_logger_and_time(
    production_api: Served, product_id: int
) -> None:
    production_api.client.get(f"/products/{product_id}")

    records = [json.loads(line) for line in production_api.settled_lines()]

    assert records, "the API logged nothing"
    for record in records:
        assert {"event", "level", "logger", "timestamp"} <= record.keys(), record
    assert "uvicorn.access" in {record["logger"] for record in records}


def test_production_logs_one_line_per_read_carrying_its_trace_id(
    production_api: Served, product_id: int
) -> None:
    before = len(production_api.settled_lines())

    response = production_api.client.get(f"/products/{product_id}")

    new = [json.loads(line) for line in production_api.settled_lines()[before:]]
    assert response.status_code == 200
    assert len(new) == 1, new
    (access,) = new
    assert access["logger"] == "uvicorn.access"
    assert f"GET /products/{product_id} " in access["event"]
    assert access["trace_id"] == response.headers["x-request-id"]


def test_inline_job_logs_under_the_trace_id_of_the_request_that_dispatched_it(
    production_api: Served, product_id: int
) -> None:
    response = production_api.client.post(
        f"/products/{product_id}/jobs/restock-email", json={"recipientEmail": "a@example.com"}
    )

    trace_id = response.headers["x-request-id"]
    records = [json.loads(line) for line in production_api.settled_lines()]
    job_lines = [record for record in records if record["event"].startswith("restock email")]
    assert response.status_code == 202, response.text
    assert [record["event"] for record in job_lines][-2:] == ["restock email", "restock email sent"]
    assert {record["trace_id"] for record in job_lines[-2:]} == {trace_id}


def test_metrics_answer_without_a_token_in_production(production_api: Served) -> None:
    anonymous = httpx.get(f"{production_api.client.base_url}/metrics", timeout=10)
    anonymous_write = httpx.post(f"{production_api.client.base_url}/products/", json=PRODUCT)

    assert anonymous.status_code == 200
    assert anonymous_write.status_code == 401


def test_metrics_count_requests_by_route_template(production_api: Served, product_id: int) -> None:
    for _ in range(3):
        production_api.client.get(f"/products/{product_id}")

    scraped = production_api.client.get("/metrics")

    families = {family.name: family for family in text_string_to_metric_families(scraped.text)}
    reads = [
        sample
        for sample in families["http_requests"].samples
        if sample.name == "http_requests_total"
        and sample.labels["method"] == "GET"
        and sample.labels["status_code"] == "200"
    ]
    assert {sample.labels["path_template"] for sample in reads} >= {"/products/{id}", "/health"}
    by_route = {sample.labels["path_template"]: sample.value for sample in reads}
    assert by_route["/products/{id}"] >= 3


@pytest.fixture
def metrics_apart(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The API with ``METRICS_PORT`` set, as the Kubernetes manifests start it (0: any
    free port, read back from the app)."""
    monkeypatch.setenv("METRICS_PORT", "0")
    with TestClient(create_api()) as client:
        yield client


def test_a_metrics_port_takes_metrics_off_the_api_port(metrics_apart: TestClient) -> None:
    assert metrics_apart.get("/metrics").status_code == 404


def test_a_metrics_port_serves_the_api_request_counts(metrics_apart: TestClient) -> None:
    metrics_apart.get("/products/1")
    port = metrics_apart.app.state.metrics_port  # type: ignore[attr-defined]

    scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)

    families = {family.name: family for family in text_string_to_metric_families(scraped.text)}
    templates = {sample.labels.get("path_template") for sample in families["http_requests"].samples}
    assert "/products/{id}" in templates


def test_development_logs_console_lines_not_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOOM_ENV", "development")

    with TestClient(create_api()) as client:
        response = client.post("/products/", json=PRODUCT)

    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert response.status_code == 201
    assert lines, "nothing was logged"
    assert not any(line.lstrip().startswith("{") for line in lines)
