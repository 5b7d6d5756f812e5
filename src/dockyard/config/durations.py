"""Durations as Distribution writes them (Go's ``time.ParseDuration``), in seconds.

``10s``, ``168h``, ``1h30m``, ``500ms``, ``1.5h`` and ``0`` are Go forms. A bare number
(``30``, or ``"30"``) is a number of seconds: unlike Go, which reads it as nanoseconds.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator

__all__ = ["Duration", "duration_seconds", "parse_duration"]

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,  # MICRO SIGN, as Go accepts
    "\u03bcs": 1e-6,  # GREEK SMALL LETTER MU
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
# "ms" before "m" and "s", so that the alternation takes the longest unit.
_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
_NUMBER = re.compile(r"\d+\.?\d*|\.\d+")
_EXPECTED = "expected e.g. 10s, 1h30m, 500ms or a number of seconds"


def parse_duration(text: str) -> float:
    """Seconds in ``text``; :class:`ValueError` if it is not a duration or is negative."""
    body = text[1:] if text[:1] in "+-" else text
    if not body:
        raise ValueError(f"invalid duration {text!r} ({_EXPECTED})")
    if _NUMBER.fullmatch(body):
        seconds = float(body)
    else:
        seconds, position = 0.0, 0
        while position < len(body):
            part = _PART.match(body, position)
            if part is None:
                raise ValueError(f"invalid duration {text!r} ({_EXPECTED})")
            seconds += float(part[1]) * _UNITS[part[2]]
            position = part.end()
    if text.startswith("-") and seconds != 0:
        raise ValueError(f"invalid duration {text!r}: must not be negative")
    return seconds


def duration_seconds(value: Any) -> float:
    """A config value (Go duration string or number of seconds) as seconds."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"invalid duration {value!r} ({_EXPECTED})")
    seconds = parse_duration(value) if isinstance(value, str) else float(value)
    if not math.isfinite(seconds):
        raise ValueError(f"invalid duration {value!r} ({_EXPECTED})")
    if seconds < 0:
        raise ValueError(f"invalid duration {value!r}: must not be negative")
    return seconds


Duration = Annotated[float, BeforeValidator(duration_seconds)]
"""A model field holding seconds, written as a Go duration or a number of seconds."""
