"""Durations: Go's forms as Distribution writes them, and plain numbers of seconds."""

from __future__ import annotations

import pytest

from dockyard.config import parse_duration
from dockyard.config.durations import duration_seconds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10s", 10.0),
        ("168h", 168 * 3600.0),
        ("24h", 86400.0),
        ("1h30m", 5400.0),
        ("2h10m", 7800.0),
        ("45m", 2700.0),
        ("500ms", 0.5),
        ("1.5h", 5400.0),
        (".5s", 0.5),
        ("1m0.5s", 60.5),
        ("250us", 0.00025),
        ("250\u00b5s", 0.00025),
        ("250\u03bcs", 0.00025),
        ("1500ns", 1.5e-6),
        ("+3s", 3.0),
        ("0", 0.0),
        ("-0", 0.0),
        ("30", 30.0),
        ("2.5", 2.5),
    ],
)
def test_go_forms_and_numbers(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", "-", "s", "10x", "1h 30m", " 1h", "h1", "10S", "1.2.3s", "ten"]
)
def test_malformed(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_negative_refused() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        parse_duration("-5s")
    with pytest.raises(ValueError, match="must not be negative"):
        duration_seconds(-1)


@pytest.mark.parametrize(("value", "seconds"), [(10, 10.0), (0.25, 0.25), ("1m", 60.0)])
def test_config_values(value: object, seconds: float) -> None:
    assert duration_seconds(value) == seconds


@pytest.mark.parametrize("value", [True, None, [1], {"s": 1}, float("inf"), float("nan")])
def test_config_values_refused(value: object) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        duration_seconds(value)
