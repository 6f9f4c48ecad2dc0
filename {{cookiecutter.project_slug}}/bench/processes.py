"""Processes ``make bench`` starts itself: the service and the baseline, API and worker.

Each runs in its own process group with its output in a log file, is timed from start
until it answers (API: ``/health``; worker: Celery's "ready" line), weighed by the
resident memory /proc reports for it and its children, and stopped by its PID.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

START_TIMEOUT = 60.0


class StartError(RuntimeError):
    """A process exited or did not become ready in time; the message holds its log tail."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Started:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    startup_seconds: float = 0.0

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def rss_mb(self) -> float:
        """Resident memory of the process and every descendant (prefork children)."""
        return sum(_rss_kb(pid) for pid in _tree(self.process.pid)) / 1024

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def start_all(
    wanted: list[tuple[str, list[str], str]], env: dict[str, str], log_dir: Path
) -> list[Started]:
    """Start each (name, command, ready) at once; ``ready`` is a URL to answer 200 or a line
    to appear in its log. Each start-up is timed on its own; on a failure all are stopped."""
    began = time.perf_counter()
    started = []
    for name, command, _ in wanted:
        log = log_dir / f"{name}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        started.append(Started(name, process, log))
    waiting = dict(zip((s.name for s in started), (ready for _, _, ready in wanted), strict=True))
    while waiting:
        for candidate in started:
            if candidate.name in waiting and _ready(candidate, waiting[candidate.name]):
                candidate.startup_seconds = time.perf_counter() - began
                del waiting[candidate.name]
            elif candidate.name in waiting and (
                candidate.process.poll() is not None or time.perf_counter() - began > START_TIMEOUT
            ):
                for each in started:
                    each.stop()
                raise StartError(f"{candidate.name} did not start:\n{candidate.tail()}")
        time.sleep(0.02)
    return started


def _ready(started: Started, ready: str) -> bool:
    if ready.startswith("http"):
        try:
            return httpx.get(ready, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False
    return ready in started.log.read_text(errors="replace")


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # The command name can hold spaces and parentheses: the parent PID follows the last ")".
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _tree(pid: int) -> list[int]:
    pids = [pid]
    for child in _children(pid):
        pids += _tree(child)
    return pids


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
