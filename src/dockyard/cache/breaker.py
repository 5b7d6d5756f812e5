"""A circuit breaker, so that a cache that is down costs one timeout, not one per request.

Closed, every call goes to the cache. The first failure opens it: for ``cooldown`` seconds
callers skip the cache and go straight to the source of truth. Then one call at a time is let
through as a probe (the next one only after another ``cooldown``, should the probe never
report back); its success closes the breaker, its failure keeps it open. An outage is logged
twice, when it starts and when it ends, however many requests it turned away.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["CircuitBreaker"]

log = logging.getLogger("dockyard.cache")


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        cooldown: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if cooldown <= 0:
            raise ValueError("cooldown must be positive")
        self._name = name
        self._cooldown = cooldown
        self._clock = clock
        # While open: when the next probe may go; None while closed.
        self._retry_at: float | None = None
        self._outage_started = 0.0

    @property
    def is_open(self) -> bool:
        return self._retry_at is not None

    def allow(self) -> bool:
        """Whether to call the cache now. A ``True`` while open makes the caller the probe,
        and the caller must report ``succeeded`` or ``failed``."""
        if self._retry_at is None:
            return True
        now = self._clock()
        if now < self._retry_at:
            return False
        self._retry_at = now + self._cooldown
        return True

    def succeeded(self) -> None:
        if self._retry_at is not None:
            self._retry_at = None
            downtime = self._clock() - self._outage_started
            log.info("%s is available again, after %.1fs", self._name, downtime)

    def failed(self, error: BaseException) -> None:
        now = self._clock()
        if self._retry_at is None:
            self._outage_started = now
            log.warning(
                "%s is unavailable (%s); going without it, trying again every %gs",
                self._name,
                error,
                self._cooldown,
            )
        self._retry_at = now + self._cooldown
