"""Run a command with a baked project's integration tests pointed at real services:
``python -m tests.with_services make -C <project> test``.

This machine's PostgreSQL (each test module makes and drops a database of its own) and a
Redis of the run's own on a free port, stopped afterwards, as in ``make test``.
"""

from __future__ import annotations

import os
import subprocess
import sys

from tests.stack import admin_connection, integration_environment, private_redis


def main(command: list[str]) -> int:
    admin_connection().close()  # says how to reach PostgreSQL when it cannot
    with private_redis() as redis_port:
        environment = os.environ | integration_environment(redis_port)
        return subprocess.run(command, env=environment, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
