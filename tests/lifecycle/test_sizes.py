"""Sizes and periods as the lifecycle commands read them."""

from __future__ import annotations

import click
import pytest

from dockyard.lifecycle.cli import parse_period, parse_size


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("2048", 2048),
        ("500MB", 500_000_000),
        ("10GiB", 10 * 1024**3),
        ("1.5T", int(1.5 * 1024**4)),
        ("1KiB", 1024),
        ("3kb", 3000),
        ("0", 0),
    ],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["lots", "-1", "10 parsecs", ""])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(click.BadParameter):
        parse_size(text)


def test_periods() -> None:
    assert parse_period("30d") == 30 * 86400
    assert parse_period("2w") == 14 * 86400
    assert parse_period("12h") == 12 * 3600
    with pytest.raises(click.BadParameter):
        parse_period("soon")
