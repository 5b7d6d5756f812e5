"""Sizes and periods as people write them (``10GiB``, ``500MB``, ``30d``, ``12h``), for the
CLI and the management API alike. Pure: no I/O."""

from __future__ import annotations

import math
import re

__all__ = ["MAX_PERIOD", "MAX_SIZE", "parse_period", "parse_size"]

# Larger than any store, small enough for a signed 64-bit column.
MAX_SIZE = 1 << 62
# A century: longer is a typo, and the seconds must fit the column.
MAX_PERIOD = 100 * 366 * 86400.0

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgtp]?i?b?)?", re.IGNORECASE)
_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}
_PERIOD = re.compile(r"(\d+(?:\.\d+)?)([dw])")


def parse_size(text: str) -> int:
    """Bytes in ``500MB``, ``10GiB``, ``1.5T``, ``2048`` (KB/MB/... are powers of 1000, KiB/MiB
    and bare K/M/... of 1024); :class:`ValueError` for anything else or more than
    :data:`MAX_SIZE`."""
    found = _SIZE.fullmatch(text.strip())
    if found is None:
        raise ValueError(f"{text[:40]!r} is not a size (e.g. 500MB, 10GiB, 2048)")
    number, unit = found.group(1), (found.group(2) or "").lower()
    prefix = unit[:1] if unit[:1] in _POWERS and unit[:1] else ""
    base = 1000 if unit.endswith("b") and not unit.endswith("ib") and prefix else 1024
    size = float(number) * base ** _POWERS[prefix]
    if not math.isfinite(size) or size > MAX_SIZE:
        raise ValueError(f"{text[:40]!r} is larger than {MAX_SIZE} bytes")
    return int(size)


def parse_period(text: str) -> float:
    """Seconds in ``30d``, ``2w``, or a Go duration (``12h``, ``90m``); :class:`ValueError`
    for anything else, nothing, or more than :data:`MAX_PERIOD`."""
    from dockyard.config.durations import parse_duration

    found = _PERIOD.fullmatch(text.strip())
    if found is not None:
        seconds = float(found.group(1)) * (86400.0 if found.group(2) == "d" else 7 * 86400.0)
    else:
        try:
            seconds = parse_duration(text.strip())
        except ValueError as error:
            raise ValueError(f"{error}; or days and weeks: 30d, 2w") from None
    if not math.isfinite(seconds) or seconds > MAX_PERIOD:
        raise ValueError(f"period {text[:40]!r} is longer than a century")
    return seconds
