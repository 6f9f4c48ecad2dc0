"""Where loom's repository cache keeps its entries (``CACHE_URL``), and a Redis outage
costing speed, not requests.

loom keeps each product and list page in the cache of ``config/cache.yaml``, keyed by
generation counters that every write through loom bumps right after its commit: a read
never gets an entry older than the last write. That holds across processes only if they
share the cache, so a deployed API or worker refuses one in its own memory.
loom's Redis backend raises when Redis does not answer, which turns a GET into a 500
while PostgreSQL is fine. ``RedisReadCache`` answers such a read as a miss (the request
reads the database) and keeps the bumps it could not send, sending them before this
process reads the cache again. Another process may still read an entry a write made
during the outage left behind, until this one reads again or the entry's TTL ends; the
TTLs in ``cache.yaml`` bound that.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from aiocache import RedisCache, SimpleMemoryCache
from loom.core.cache import CacheConfig
from loom.core.di.container import LoomContainer
from loom.core.environment import resolve_environment
from redis.exceptions import RedisError

from {{ cookiecutter.package_name }}.broker import IN_PROCESS_ENVIRONMENTS
from {{ cookiecutter.package_name }}.setting_error import SettingError

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Seconds before a Redis that does not answer counts as down (a stopped one refuses at
# once). Not shorter: the event loop can be busy for a few hundred milliseconds (a
# synchronous publish to a broker reconnecting), which must not count as Redis' time.
CONNECT_TIMEOUT = 1.0
READ_TIMEOUT = 2.0

UNREACHABLE = (RedisError, OSError)
# Redis servers (host, port) this process found not answering: the entries and the
# counters share one, and the outage is logged once, not by each.
_unanswered: set[tuple[str, int]] = set()


def cache_at(url: str, **options: Any) -> Any:
    """The aiocache backend ``url`` names: ``memory://`` or ``redis://:password@host:port/db``,
    so the cache is set by one variable, like the broker and the result backend."""
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        return SimpleMemoryCache(**options)
    if scheme == "redis":
        return RedisReadCache(url, **options)
    # Only the scheme: the URL holds a password.
    raise SettingError(f"CACHE_URL must start with memory:// or redis://, not {scheme}://")


def require_shared_cache(container: LoomContainer, broker_url: str) -> None:
    """Refuse, when deployed, a cache in this process while jobs run in others: each
    process would keep entries that the others' writes never invalidate."""
    config = container.resolve(CacheConfig)
    cache_url = str(config.aiocache_config[config.aiocache_alias]["url"])
    in_process = urlsplit(cache_url).scheme == "memory"
    jobs_elsewhere = urlsplit(broker_url).scheme != "memory"
    if in_process and jobs_elsewhere and resolve_environment() not in IN_PROCESS_ENVIRONMENTS:
        raise SettingError(
            "CACHE_URL=memory:// keeps the cache in this process, but jobs run in workers "
            "whose writes would leave it stale: set CACHE_URL to the Redis they all reach "
            "(redis://:password@host:6379/2)"
        )


def redis_settings(url: str) -> dict[str, Any]:
    """aiocache's RedisCache arguments from a Redis URL."""
    parts = urlsplit(url)
    return {
        "endpoint": parts.hostname or "localhost",
        "port": parts.port or 6379,
        "db": int(parts.path.lstrip("/") or 0),
        "password": unquote(parts.password) if parts.password else None,
    }


class RedisReadCache(RedisCache):  # type: ignore[misc]  # aiocache ships no types
    """aiocache's RedisCache where Redis not answering is a miss, not an error."""

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(
            **redis_settings(url),
            create_connection_timeout=CONNECT_TIMEOUT,
            connection_pool_kwargs={"socket_timeout": READ_TIMEOUT},
            **options,
        )
        self._unsent_bumps: dict[str, int] = {}

    async def _get(self, key: str, *args: Any, **kwargs: Any) -> Any:
        return await self._answer(lambda: super(RedisReadCache, self)._get(key, *args, **kwargs))

    async def _multi_get(self, keys: list[str], *args: Any, **kwargs: Any) -> Any:
        if not keys:
            # aiocache 0.12.3 sends MGET with no key, which redis-py refuses with a
            # TypeError; loom asks for none on an empty list page (test_defect_* in
            # tests/test_cache.py fails once aiocache stops doing so).
            return []
        return await self._answer(
            lambda: super(RedisReadCache, self)._multi_get(keys, *args, **kwargs),
            [None] * len(keys),
        )

    async def _set(self, *args: Any, **kwargs: Any) -> Any:
        return await self._answer(lambda: super(RedisReadCache, self)._set(*args, **kwargs), False)

    async def _multi_set(self, *args: Any, **kwargs: Any) -> Any:
        return await self._answer(
            lambda: super(RedisReadCache, self)._multi_set(*args, **kwargs), False
        )

    async def _increment(self, key: str, delta: int, *args: Any, **kwargs: Any) -> Any:
        """A generation bump: kept for later when Redis does not take it, since the
        write it announces is already committed."""
        self._unsent_bumps[key] = self._unsent_bumps.get(key, 0) + delta
        try:
            await self._send_unsent_bumps()
        except UNREACHABLE as error:
            self._note_unreachable(error)
        return 0

    async def _answer(self, call: Callable[[], Awaitable[T]], miss: Any = None) -> T | Any:
        try:
            await self._send_unsent_bumps()
            answer = await call()
        except UNREACHABLE as error:
            self._note_unreachable(error)
            return miss
        self._note_reachable()
        return answer

    async def _send_unsent_bumps(self) -> None:
        # Bumps are sent concurrently (one per tag of a write): each takes its own off.
        while self._unsent_bumps:
            key, delta = self._unsent_bumps.popitem()
            try:
                await super()._increment(key, delta)
            except BaseException:
                self._unsent_bumps[key] = self._unsent_bumps.get(key, 0) + delta
                raise

    def _note_unreachable(self, error: Exception) -> None:
        if (self.endpoint, self.port) not in _unanswered:
            _unanswered.add((self.endpoint, self.port))
            logger.warning("cache: Redis does not answer, reading the database (%s)", error)

    def _note_reachable(self) -> None:
        if (self.endpoint, self.port) in _unanswered:
            _unanswered.discard((self.endpoint, self.port))
            logger.warning("cache: Redis answers again")
