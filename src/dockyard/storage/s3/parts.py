"""Multipart arithmetic: S3's part limits, and how to cut a byte range into parts."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MAX_PARTS", "MAX_PART_SIZE", "MIN_PART_SIZE", "Part", "plan"]

MiB = 1 << 20
GiB = 1 << 30

MIN_PART_SIZE = 5 * MiB
"""Every part but the last must be at least this large."""
MAX_PART_SIZE = 5 * GiB
"""Also the largest object one CopyObject can copy."""
MAX_PARTS = 10_000


@dataclass(frozen=True, slots=True)
class Part:
    number: int
    etag: str
    size: int


def plan(total: int, size: int) -> list[tuple[int, int]]:
    """Cut ``[0, total)`` into ``(start, end)`` ranges of about ``size`` bytes, at most
    ``MAX_PARTS`` of them. The last range takes the remainder, so when ``total`` is at least
    ``MIN_PART_SIZE`` every range is a valid non-final part."""
    if total <= 0:
        return []
    # The last range may grow to nearly twice ``size``: keep it within the part limit.
    size = min(max(size, MIN_PART_SIZE, -(-total // MAX_PARTS)), MAX_PART_SIZE // 2)
    count = max(1, total // size)
    starts = [n * size for n in range(count)]
    ends = [*starts[1:], total]
    return list(zip(starts, ends, strict=True))
