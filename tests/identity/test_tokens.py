"""Access token secrets and lifetimes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dockyard.identity.tokens import looks_like_token, new_secret, parse_lifetime, secret_hash


def test_secrets_are_new_prefixed_and_hashed() -> None:
    first, second = new_secret(), new_secret()
    assert first != second
    assert looks_like_token(first)
    assert not looks_like_token("wonderland")
    assert len(first) == len("dyt_") + 43
    assert secret_hash(first) == secret_hash(first) != secret_hash(second)
    assert len(secret_hash(first)) == 64


@pytest.mark.parametrize(
    ("text", "lifetime"),
    [
        ("12h", timedelta(hours=12)),
        ("30d", timedelta(days=30)),
        ("4W", timedelta(weeks=4)),
        ("1y", timedelta(days=365)),
    ],
)
def test_lifetimes(text: str, lifetime: timedelta) -> None:
    assert parse_lifetime(text) == lifetime


@pytest.mark.parametrize("text", ["", "0d", "30", "1m", "-1d", "1.5d", "d"])
def test_bad_lifetimes(text: str) -> None:
    with pytest.raises(ValueError, match="invalid lifetime"):
        parse_lifetime(text)
