"""The outbox's settings, per deployment from the environment, checked at start.

A bad value stops the API before it serves, in one line naming the variable and its
rule: a relay that never runs, or prunes what it has not sent, fails silently later.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from {{ cookiecutter.package_name }}.setting_error import SettingError

# Seconds between relay passes while the broker is up. The relay only catches what the
# publish right after each commit missed, so this is not the normal path's latency.
DEFAULT_RELAY_INTERVAL = 1.0
# Longest wait between attempts while the broker is down: a job waits at most this long
# after the broker is back.
DEFAULT_RELAY_MAX_BACKOFF = 5.0
# Sent rows are kept this long (seconds) to answer "was job X published, and when?".
DEFAULT_RETENTION = 7 * 24 * 3600
MAX_RELAY_INTERVAL = 60.0
MAX_RELAY_BACKOFF = 300.0
MIN_RETENTION = 60


def _number(name: str, default: float, rule: str) -> float:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingError(f"{name}={raw!r}: {rule}") from None


@dataclass(frozen=True)
class OutboxSettings:
    relay_interval: float = DEFAULT_RELAY_INTERVAL
    relay_max_backoff: float = DEFAULT_RELAY_MAX_BACKOFF
    retention: int = DEFAULT_RETENTION

    @classmethod
    def from_environment(cls) -> OutboxSettings:
        """``OUTBOX_RELAY_INTERVAL``, ``OUTBOX_RELAY_MAX_BACKOFF``, ``OUTBOX_RETENTION``."""
        interval_rule = f"must be seconds, more than 0 and at most {MAX_RELAY_INTERVAL:g}"
        interval = _number("OUTBOX_RELAY_INTERVAL", DEFAULT_RELAY_INTERVAL, interval_rule)
        if not 0 < interval <= MAX_RELAY_INTERVAL:
            raise SettingError(f"OUTBOX_RELAY_INTERVAL={interval:g}: {interval_rule}")
        backoff_rule = (
            f"must be seconds, at least OUTBOX_RELAY_INTERVAL ({interval:g}) "
            f"and at most {MAX_RELAY_BACKOFF:g}"
        )
        backoff = _number("OUTBOX_RELAY_MAX_BACKOFF", DEFAULT_RELAY_MAX_BACKOFF, backoff_rule)
        if not interval <= backoff <= MAX_RELAY_BACKOFF:
            raise SettingError(f"OUTBOX_RELAY_MAX_BACKOFF={backoff:g}: {backoff_rule}")
        retention_rule = f"must be whole seconds, at least {MIN_RETENTION}"
        retention = _number("OUTBOX_RETENTION", DEFAULT_RETENTION, retention_rule)
        if retention != int(retention) or retention < MIN_RETENTION:
            raise SettingError(f"OUTBOX_RETENTION={retention:g}: {retention_rule}")
        return cls(interval, backoff, int(retention))
