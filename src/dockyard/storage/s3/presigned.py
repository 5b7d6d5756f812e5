"""Presigned URLs handed out again while most of their lifetime is left.

Signing one costs a hop to a worker thread (boto3 may have to fetch credentials, which is
I/O), and many clients pull the same layers at once (a rollout across a fleet): so each hot
object is signed once per ``lifetime / REUSE_FRACTION`` seconds rather than once per request.
A URL is only ever as good as a fresh one for the clients that get it: they were authorized
for the object before the registry redirected them, and it stays valid for at least three
quarters of its lifetime after it is handed out.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

__all__ = ["PresignedUrls"]

REUSE_FRACTION = 4
"""A URL is reused for this fraction of its lifetime (a quarter)."""
CAPACITY = 4096
"""URLs kept at most, the least recently handed out going first."""

Presign = Callable[[str, str, int], Awaitable[str]]
"""(key, method, seconds valid) -> URL."""


class PresignedUrls:
    def __init__(
        self,
        presign: Presign,
        capacity: int = CAPACITY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._presign = presign
        self._capacity = capacity
        self._clock = clock
        self._urls: OrderedDict[tuple[str, str, int], tuple[str, float]] = OrderedDict()

    async def get(self, key: str, method: str, lifetime: int) -> str:
        """A URL for ``method`` on ``key`` valid for at least ``3/4 * lifetime`` seconds."""
        entry = (key, method, lifetime)
        kept = self._urls.get(entry)
        if kept is not None and self._clock() < kept[1]:
            self._urls.move_to_end(entry)
            return kept[0]
        signed_at = self._clock()
        url = await self._presign(key, method, lifetime)
        self._urls[entry] = (url, signed_at + lifetime / REUSE_FRACTION)
        self._urls.move_to_end(entry)
        while len(self._urls) > self._capacity:
            self._urls.popitem(last=False)
        return url
