"""The worker's heartbeat file, for its healthcheck (heartbeat.py): touched every time the
worker sends Celery's heartbeat event, every 2 s from its main loop while it is connected
to the broker, so the file goes stale when that loop hangs or the broker is gone.

On where WORKER_HEARTBEAT_FILE names the file (compose and Kubernetes set it, in each
container's own /tmp); a worker run by hand writes none.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from celery.signals import heartbeat_sent, worker_init

HEARTBEAT_FILE_VARIABLE = "WORKER_HEARTBEAT_FILE"


def keep_worker_heartbeat(environment: Mapping[str, str]) -> None:
    """Connect the heartbeat file named in ``environment`` to the worker's signals."""
    filename = environment.get(HEARTBEAT_FILE_VARIABLE)
    if not filename:
        return
    heartbeat = Path(filename)

    def forget_earlier_heartbeats(**_: object) -> None:
        # A restarted container keeps its /tmp: a file left by the process before must not
        # vouch for this one.
        heartbeat.unlink(missing_ok=True)

    def touch(**_: object) -> None:
        heartbeat.touch()

    worker_init.connect(forget_earlier_heartbeats, weak=False)
    heartbeat_sent.connect(touch, weak=False)
