"""Periodic jobs: ``config/schedule.yaml`` read, checked and handed to Celery beat.

loom 9.0.0 has no periodic jobs, and its ``celery:`` section refuses ``beat_schedule``.
But beat can send loom's own job task (``loom.job.<Job>``) with loom's kwargs envelope,
so a worker runs a scheduled job exactly as a dispatched one: same queue, retries, time
limit and unit of work. The file is read here with omegaconf, loom's own loader, so
``${oc.env:...}`` works as in every other config file. Exactly one beat process may run:
each beat sends every entry, so two would run every periodic job twice.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from celery import Celery
from celery.beat import PersistentScheduler
from celery.schedules import crontab, schedule
from loom.core.identity import Identity
from loom.core.identity.wire import encode_identity
from loom.core.job.job import Job
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from {{ cookiecutter.package_name }}.setting_error import SettingError

SCHEDULE_FILE = "schedule.yaml"
ENTRY_NAME = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
INTERVAL = re.compile(r"^(\d+)([smhd])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
ENTRY_KEYS = frozenset({"job", "every", "crontab", "payload"})
# Beat wakes at least this often and touches its heartbeat file each time, well inside
# heartbeat.HEARTBEAT_STALE.
BEAT_MAX_LOOP_INTERVAL = 5


@dataclass(frozen=True)
class ScheduledJob:
    """One checked entry of the schedule."""

    name: str
    job: type[Job[Any]]
    when: schedule | crontab
    payload: dict[str, Any]

    def beat_entry(self) -> dict[str, Any]:
        """The entry in ``beat_schedule``: the message ``JobService.dispatch`` would send."""
        # The worker refuses a job that asks for its caller when no identity travels
        # (loom fails closed), so the schedule is the caller, by name, in the audit trail.
        caller = Identity(subject=f"schedule:{self.name}", mechanism="beat")
        options: dict[str, Any] = {"queue": self.job.__queue__}
        if isinstance(self.when, schedule) and not isinstance(self.when, crontab):
            # A run still queued when the next is due (workers down) is dropped, so a
            # backlog of identical sweeps does not run back to back when they return.
            options["expires"] = self.when.run_every.total_seconds()
        return {
            "task": f"loom.job.{self.job.__qualname__}",
            "schedule": self.when,
            "kwargs": {
                "payload": self.payload,
                "params": {},
                "trace_id": None,
                "identity": encode_identity(caller),
            },
            "options": options,
        }


def job_classes(base: type[Any] = Job) -> Iterator[type[Job[Any]]]:
    for subclass in base.__subclasses__():
        yield subclass
        yield from job_classes(subclass)


def known_jobs(config_dir: Path) -> dict[str, type[Job[Any]]]:
    """The job classes of the modules ``app.discovery`` names in base.yaml (both lists:
    whichever mode is on, the other names the same classes)."""
    discovery = OmegaConf.load(config_dir / "base.yaml").app.discovery
    for module in [*discovery.modules.include, discovery.manifest.module]:
        importlib.import_module(module)
    return {job.__name__: job for job in job_classes()}


def parse_interval(text: str) -> timedelta:
    matched = INTERVAL.match(text)
    if matched is None or int(matched[1]) == 0:
        raise ValueError("must be a positive whole number and a unit s, m, h or d, like 30s or 10m")
    return timedelta(seconds=int(matched[1]) * UNIT_SECONDS[matched[2]])


def parse_crontab(text: str) -> crontab:
    if len(text.split()) != 5:
        raise ValueError("must have five fields: minute hour day-of-month month day-of-week")
    parsed: crontab = crontab.from_string(text)
    return parsed


def _entry(
    name: str, raw: Any, jobs: Mapping[str, type[Job[Any]]]
) -> tuple[ScheduledJob | None, list[str]]:
    where = f"schedule.yaml: {name}"
    if not ENTRY_NAME.match(name):
        return None, [f"{where}: the name must be kebab-case (lowercase words joined by -)"]
    if not isinstance(raw, Mapping):
        return None, [f"{where}: must be a mapping with job, every or crontab, and payload"]
    problems = [f"{where}: unknown key {key!r}" for key in sorted(set(raw) - ENTRY_KEYS)]
    job = jobs.get(str(raw.get("job")))
    if job is None:
        known = ", ".join(sorted(jobs))
        named = f"job {raw['job']!r} names no Job class" if "job" in raw else "job is missing"
        problems.append(f"{where}: {named}; known: {known}")
    when: schedule | crontab | None = None
    if ("every" in raw) == ("crontab" in raw):
        problems.append(f"{where}: give exactly one of every (like 10m) and crontab")
    elif "every" in raw:
        try:
            when = schedule(run_every=parse_interval(str(raw["every"])))
        except ValueError as exc:
            problems.append(f"{where}: every {raw['every']!r} {exc}")
    else:
        try:
            when = parse_crontab(str(raw["crontab"]))
        except ValueError as exc:
            problems.append(f"{where}: crontab {raw['crontab']!r} is invalid: {exc}")
    payload = raw.get("payload", {})
    if not isinstance(payload, Mapping):
        problems.append(f"{where}: payload must be a mapping (the job's Input() fields)")
    if problems or job is None or when is None:
        return None, problems
    return ScheduledJob(name, job, when, dict(payload)), []


def read_schedule(config_dir: Path) -> tuple[list[ScheduledJob], list[str]]:
    """The entries of ``config_dir/schedule.yaml`` and the problems found, one line each."""
    try:
        loaded = OmegaConf.load(config_dir / SCHEDULE_FILE)
        raw = OmegaConf.to_container(loaded, resolve=True) if isinstance(loaded, DictConfig) else {}
    except (OSError, OmegaConfBaseException) as exc:
        return [], [f"{SCHEDULE_FILE}: {str(exc).splitlines()[0]}"]
    entries = raw.get("schedule") if isinstance(raw, dict) else None
    if not isinstance(entries, dict):
        return [], [f"{SCHEDULE_FILE}: must hold a `schedule:` mapping of named entries"]
    jobs = known_jobs(config_dir)
    scheduled, problems = [], []
    for name, body in entries.items():
        entry, found = _entry(str(name), body, jobs)
        problems += found
        if entry is not None:
            scheduled.append(entry)
    return scheduled, problems


def schedule_problems(config_dir: Path) -> list[str]:
    """Everything wrong with the schedule, one line per problem; empty when it is fine."""
    return read_schedule(config_dir)[1]


def load_schedule(config_dir: Path) -> list[ScheduledJob]:
    scheduled, problems = read_schedule(config_dir)
    if problems:
        raise SettingError("; ".join(problems))
    return scheduled


def configure_beat(celery_app: Celery, config_dir: Path) -> list[ScheduledJob]:
    """Give the worker's Celery app the schedule and the heartbeat scheduler; raises
    :class:`SettingError` for a schedule with problems. Call after the jobs' YAML has
    reached the job classes (the worker's boot does it), so each entry takes its queue."""
    scheduled = load_schedule(config_dir)
    celery_app.conf.update(
        beat_schedule={entry.name: entry.beat_entry() for entry in scheduled},
        beat_scheduler=f"{__name__}:HeartbeatScheduler",
        beat_max_loop_interval=BEAT_MAX_LOOP_INTERVAL,
    )
    return scheduled


def heartbeat_file(schedule_filename: str) -> Path:
    """Beat's heartbeat file, beside its state: what its healthcheck reads."""
    return Path(f"{schedule_filename}.heartbeat")


class HeartbeatScheduler(PersistentScheduler):  # type: ignore[misc]
    """Celery's file-backed scheduler, plus a heartbeat file touched on every wake-up: a
    healthcheck can tell a live beat from a stuck one, which no port or ping can."""

    def setup_schedule(self) -> None:
        # The state directory is a volume in containers; a local run makes its own.
        Path(self.schedule_filename).parent.mkdir(parents=True, exist_ok=True)
        super().setup_schedule()

    def tick(self, *args: Any, **kwargs: Any) -> float:
        heartbeat_file(self.schedule_filename).touch()
        interval: float = super().tick(*args, **kwargs)
        return interval
