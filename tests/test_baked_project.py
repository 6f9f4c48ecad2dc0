"""The default bake, installed with uv: its checks pass and `make run` serves the job flow."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BAKED_RUN_TIMEOUT, Bake, Served, run_make
from tests.stack import admin_connection, integration_environment, private_redis
from tests.tools import uv_executable


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
            env=integration_environment(redis_port),
        )

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "skipped" not in result.stdout.splitlines()[-1]


def test_make_run_serves_the_restock_flow_over_http(served: Served) -> None:
    product = {
        "sku": "KET-RUN",
        "name": "Kettle",
        "category": "kitchen",
        "priceCents": 2599,
        "stock": 0,
    }
    created = served.client.post("/products/", json=product)
    assert created.status_code == 201, created.text
    product_id = created.json()["id"]

    accepted = served.client.post(
        f"/products/{product_id}/jobs/restock-email", json={"recipientEmail": "a@b.co"}
    )

    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["queue"] == "notifications"
    tagged = served.client.get(f"/products/{product_id}").json()
    assert tagged["category"] == "kitchen-restock-notified"
    summary = served.client.get(f"/products/{product_id}/jobs/summary")
    assert summary.status_code == 200
    assert (
        summary.json()["summary"]
        == "Kettle (KET-RUN) in kitchen-restock-notified: 0 in stock at 25.99"
    )


def test_make_run_serves_the_api_docs(served: Served) -> None:
    assert served.client.get("/docs").status_code == 200


def test_make_run_starts_quietly_and_states_the_embedded_mode(served: Served) -> None:
    output = served.output()

    assert "Warning" not in output, output
    assert output.count("job runtime: inline (jobs run in this process") == 1, output
    assert output.count("development: authentication is off") == 1, output


def test_project_uses_the_uv_it_is_handed(bake: Bake) -> None:
    """`make demo` hands its uv down: the project installs none of its own."""
    project = bake()
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(project), "install"],
        capture_output=True,
        text=True,
        env=os.environ | {"UV": uv_executable()},
        timeout=BAKED_RUN_TIMEOUT,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{uv_executable()} sync --locked" in result.stdout
    assert not (project / ".tools").exists()


def token_roles(token: str) -> list[str]:
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    roles: list[str] = claims["roles"]
    return roles


@pytest.mark.parametrize(
    ("extra", "roles"), [((), ["reader", "writer"]), (("ROLES=reader",), ["reader"])]
)
def test_make_token_prints_a_token_with_the_roles_asked_for(
    default_project: Path, extra: tuple[str, ...], roles: list[str]
) -> None:
    made = run_make(default_project, "-s", "token", *extra)

    assert made.returncode == 0, made.stderr
    assert token_roles(made.stdout.strip()) == roles
