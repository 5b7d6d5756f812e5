"""Chunk sizes that follow how fast a response's consumer takes its bytes.

Past a response's own queue, the HTTP server keeps chunks of its own for each response
(Granian: four) without back-pressure, so with a fixed 2 MiB chunk a client slower than the
store held some 16 MiB of memory for as long as its pull lasted. Sized by rate, a chunk holds
``_CHUNK_SECONDS`` of the consumer's bytes, between ``_SMALLEST_CHUNK`` and the largest the
reader allows: little memory for a slow client, and large chunks, which cost less CPU per
byte, for a fast one. (A slow client still looks fast while the socket buffers between it and
us fill, and holds large chunks until it has taken them.)
"""

from __future__ import annotations

__all__ = ["ChunkPacer"]

_SMALLEST_CHUNK = 64 * 1024
_FIRST_CHUNK = 256 * 1024
"""Chunk size until the consumer's rate is known: asyncio's own read size."""
_CHUNK_SECONDS = 0.02
"""A chunk holds this long of the consumer's bytes."""
_RATE_WINDOW = 0.05
_RATE_CHUNKS = 16
"""The consumer's rate is measured anew over each ``_RATE_WINDOW`` seconds, or over each
``_RATE_CHUNKS`` chunks if it takes them sooner: more than the HTTP server takes at once
without back-pressure, so that a slow client's first burst does not look fast."""


class ChunkPacer:
    """The chunk size for one response, from the times its consumer takes chunks."""

    def __init__(self, largest: int) -> None:
        self._largest = largest
        self._window_start = -1.0
        """When the current rate window began (-1: not yet)."""
        self._window_bytes = 0
        self._window_chunks = 0

    def first(self) -> int:
        """The size to start with, before any chunk is taken."""
        return self._bounded(_FIRST_CHUNK)

    def taken(self, size: int, now: float) -> int | None:
        """The consumer took ``size`` bytes at ``now`` (seconds, any monotonic clock): the
        size its rate calls for at the end of a rate window, else None."""
        if self._window_start < 0:
            self._window_start = now  # the first chunk waited for the headers, not the consumer
            return None
        self._window_bytes += size
        self._window_chunks += 1
        elapsed = now - self._window_start
        if elapsed < _RATE_WINDOW and self._window_chunks < _RATE_CHUNKS:
            return None
        rate = self._window_bytes / max(elapsed, 1e-6)
        self._window_start, self._window_bytes, self._window_chunks = now, 0, 0
        return self._bounded(int(rate * _CHUNK_SECONDS))

    def _bounded(self, size: int) -> int:
        return max(_SMALLEST_CHUNK, min(size, self._largest))
