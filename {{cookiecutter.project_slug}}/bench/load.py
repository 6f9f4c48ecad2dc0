"""The load generator: N connections in one asyncio loop, each sending as fast as answered.

Written on httpx (already in the lock file) rather than a native tool such as wrk, so
``make bench`` needs nothing beyond the project's own files. It costs client CPU on the
same machine; both sides pay it alike, which is what the ratio column relies on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from time import perf_counter

import httpx

# Sends request number ``n`` of the run on ``client``.
Request = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]


@dataclass
class Sample:
    """Latencies (seconds) of the answered requests of one or more runs."""

    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    failures: list[str] = field(default_factory=list)

    def add(self, other: Sample) -> None:
        self.latencies += other.latencies
        self.elapsed += other.elapsed
        self.failures += other.failures

    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def percentile(self, share: float) -> float:
        """Nearest-rank percentile, in milliseconds."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def hammer(
    client: httpx.AsyncClient, request: Request, connections: int, seconds: float
) -> Sample:
    """Keep ``connections`` requests in flight for ``seconds``; a failure is any exception
    or status >= 400 (kept with its reason)."""
    sample = Sample()
    counter = iter(range(10**9))
    start = perf_counter()
    deadline = start + seconds

    async def connection() -> None:
        while perf_counter() < deadline:
            sent = perf_counter()
            try:
                response = await request(client, next(counter))
            except httpx.HTTPError as exc:
                sample.failures.append(f"{type(exc).__name__}: {exc}")
                continue
            if response.status_code >= 400:
                sample.failures.append(f"{response.status_code} {response.text[:200]}")
                continue
            sample.latencies.append(perf_counter() - sent)

    await asyncio.gather(*(connection() for _ in range(connections)))
    sample.elapsed = perf_counter() - start
    return sample
