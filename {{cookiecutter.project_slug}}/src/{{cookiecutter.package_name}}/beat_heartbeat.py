"""Beat's liveness: the scheduler touches a file beside its state every time it wakes, and
the healthchecks read how old that file is, which no port or ping can tell.

Standard library only: the compose and Kubernetes healthchecks start this module every
15-30 s, and importing Celery and loom for it cost about a second of CPU each time.
``python -m {{ cookiecutter.package_name }}.beat_heartbeat STATE_FILE`` exits 0 while the
heartbeat of beat's STATE_FILE is fresh.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

# Beat wakes at least this often (seconds; schedule.py gives it to Celery) and touches its
# heartbeat each time; older than HEARTBEAT_STALE means stuck, e.g. on a broker that does
# not answer.
BEAT_MAX_LOOP_INTERVAL = 5
HEARTBEAT_STALE = 30


def heartbeat_file(schedule_filename: str) -> Path:
    return Path(f"{schedule_filename}.heartbeat")


def heartbeat_is_fresh(schedule_filename: str, now: float) -> bool:
    try:
        return now - heartbeat_file(schedule_filename).stat().st_mtime < HEARTBEAT_STALE
    except FileNotFoundError:
        return False


def main(argv: list[str] | None = None) -> int:
    (schedule_filename,) = sys.argv[1:] if argv is None else argv
    return 0 if heartbeat_is_fresh(schedule_filename, time.time()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
