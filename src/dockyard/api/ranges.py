"""HTTP Range requests on blobs (RFC 9110 byte ranges). Pure, no I/O."""

from __future__ import annotations

import re

from dockyard.errors import RangeInvalid

__all__ = ["parse_range", "unsatisfiable"]

_SPEC = re.compile(r"\s*(\d*)\s*-\s*(\d*)\s*")
_MAX_RANGES = 64


def unsatisfiable(size: int) -> RangeInvalid:
    return RangeInvalid(
        message="requested range not satisfiable",
        headers={"Content-Range": f"bytes */{size}"},
    )


def parse_range(header: str, size: int) -> list[tuple[int, int]] | None:
    """Inclusive ``(first, last)`` byte ranges, merged and sorted; None when the header
    should be ignored (not a bytes range) so the whole blob is served."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or not spec:
        return None
    ranges: list[tuple[int, int]] = []
    parts = spec.split(",")
    if len(parts) > _MAX_RANGES:
        raise unsatisfiable(size)
    for part in parts:
        match = _SPEC.fullmatch(part)
        if match is None or (not match[1] and not match[2]):
            return None  # malformed: RFC 9110 says ignore the header
        first_text, last_text = match[1], match[2]
        if not first_text:
            suffix = int(last_text)
            if suffix == 0:
                continue
            first, last = max(size - suffix, 0), size - 1
        else:
            first = int(first_text)
            if last_text and int(last_text) < first:
                return None
            last = int(last_text) if last_text else size - 1
            if first >= size:
                continue
            last = min(last, size - 1)
        ranges.append((first, last))
    if not ranges:
        raise unsatisfiable(size)
    ranges.sort()
    merged = [ranges[0]]
    for first, last in ranges[1:]:
        previous_first, previous_last = merged[-1]
        if first <= previous_last + 1:
            merged[-1] = (previous_first, max(previous_last, last))
        else:
            merged.append((first, last))
    return merged
