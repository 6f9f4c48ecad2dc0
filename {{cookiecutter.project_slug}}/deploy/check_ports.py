"""Stop `make up` before it starts anything when a host port the stack publishes is taken.

Docker would otherwise fail half-way through with "address already in use". One line per
taken port names the service and the .env variable that moves it. Ports held by this
project's own running services are fine, so `make up` on a running stack works; the
Makefile passes their names as arguments. Standard library only: runs with any python3.

    python3 deploy/check_ports.py [RUNNING_SERVICE ...]
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

HOST = "127.0.0.1"  # docker-compose.yml publishes every port on loopback only
# .env variable -> (service, default host port), as in docker-compose.yml.
PUBLISHED = {
    "API_PORT": ("api", 8000),
{%- if cookiecutter.use_flower == "yes" %}
    "FLOWER_PORT": ("flower", 5555),
{%- endif %}
    "POSTGRES_PORT": ("postgres", 5432),
    "REDIS_PORT": ("redis", 6379),
{%- if cookiecutter.broker == "rabbitmq" %}
    "RABBITMQ_PORT": ("rabbitmq", 5672),
    "RABBITMQ_MANAGEMENT_PORT": ("rabbitmq", 15672),
{%- endif %}
}


def env_file(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    pairs = (
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    )
    return {key.strip(): value.strip() for key, value in pairs}


def in_use(port: int) -> bool:
    with socket.socket() as probe:
        # As docker's proxy binds: a port left in TIME_WAIT is free, a listener is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return True
        return False


def taken_ports(variables: dict[str, str], running: set[str]) -> list[str]:
    problems = []
    for variable, (service, default) in PUBLISHED.items():
        port = int(variables.get(variable) or default)
        if service not in running and in_use(port):
            problems.append(
                f"port {port} ({service}) is in use on {HOST}: "
                f"set {variable} in .env to a free port"
            )
    return problems


def main(running: list[str]) -> int:
    # Compose's precedence: the shell's environment over .env.
    variables = env_file(Path(".env")) | {
        key: value for key, value in os.environ.items() if key in PUBLISHED
    }
    problems = taken_ports(variables, set(running))
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
