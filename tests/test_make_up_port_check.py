"""`make up` checks the host ports it will publish before it starts anything."""

from __future__ import annotations

import socket
import subprocess

from tests.conftest import Bake
from tests.real_stack import docker, isolate


def test_make_up_names_a_taken_port_its_service_and_variable_and_starts_nothing(
    container_engine: None, bake: Bake
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        stack = isolate(bake(), POSTGRES_PORT=str(port))

        refused = stack.make("up")

    assert refused.returncode != 0
    complaints = [line for line in refused.stderr.splitlines() if "in use" in line]
    assert complaints == [
        f"port {port} (postgres) is in use on 127.0.0.1: set POSTGRES_PORT in .env to a free port"
    ]
    assert stack.project_containers() == []
    assert docker("image", "inspect", stack.image()).returncode != 0


def test_port_check_passes_when_every_published_port_is_free(bake: Bake) -> None:
    stack = isolate(bake())

    checked = subprocess.run(
        ["python3", "deploy/check_ports.py"],
        cwd=stack.project,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert checked.returncode == 0, checked.stderr
    assert checked.stderr == ""
