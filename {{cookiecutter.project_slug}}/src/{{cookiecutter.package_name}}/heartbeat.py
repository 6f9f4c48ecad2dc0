"""Liveness of the processes that publish no port, beat and the workers: each touches a
heartbeat file while its main loop runs (schedule.py, worker_heartbeat.py), and their
healthchecks run ``python -m {{ cookiecutter.package_name }}.heartbeat FILE``, which exits 0
while FILE was touched less than HEARTBEAT_STALE seconds ago.

Standard library only: compose and Kubernetes start it every 15-30 s in every such
container. A check that imports Celery (``celery inspect ping``) costs about a second of
CPU each time; on a busy host it outlives its timeout, docker does not kill it, and the
checks pile up (measured: six workers starting at once on two cores never got healthy).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

# A worker touches its file every 2 s (Celery's heartbeat), beat at least every 5 s:
# older than this means stuck, e.g. on a broker that does not answer.
HEARTBEAT_STALE = 30


def is_fresh(heartbeat: Path, now: float) -> bool:
    try:
        return now - heartbeat.stat().st_mtime < HEARTBEAT_STALE
    except FileNotFoundError:
        return False


def main(argv: list[str] | None = None) -> int:
    (filename,) = sys.argv[1:] if argv is None else argv
    return 0 if is_fresh(Path(filename), time.time()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
