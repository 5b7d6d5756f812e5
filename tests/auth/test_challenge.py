"""Reading Authorization headers and writing challenges: malformed input is ``None``, never an
exception."""

from __future__ import annotations

import base64

import pytest

from dockyard.auth.challenge import (
    basic_challenge,
    basic_credentials,
    bearer_challenge,
    bearer_token,
    quote,
)


def basic(text: str | bytes) -> dict[str, str]:
    raw = text.encode() if isinstance(text, str) else text
    return {"authorization": "Basic " + base64.b64encode(raw).decode()}


def test_quote_escapes_quotes_and_backslashes_and_drops_controls() -> None:
    assert quote("plain") == '"plain"'
    assert quote('a"b\\c') == '"a\\"b\\\\c"'
    assert quote("x\r\ny") == '"xy"'


def test_basic_credentials() -> None:
    assert basic_credentials(basic("alice:s3cret")) == ("alice", "s3cret")
    # Only the first colon separates: passwords may hold colons.
    assert basic_credentials(basic("alice:a:b:c")) == ("alice", "a:b:c")
    assert basic_credentials(basic("alice:")) == ("alice", "")
    assert basic_credentials(basic("émile:pässword")) == ("émile", "pässword")
    # The scheme is case-insensitive.
    header = basic("alice:pw")["authorization"].replace("Basic", "bAsIc")
    assert basic_credentials({"authorization": header}) == ("alice", "pw")


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Basic",
        "Basic ",
        "Bearer abc",
        "Basic !!!notbase64!!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b":password-without-user").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:invalid-utf8").decode(),
        "Basic " + base64.b64encode(b"alice:pw").decode()[:-2],
        "Basic " + "A" * 70_000,
    ],
)
def test_malformed_basic_credentials_are_none(value: str) -> None:
    assert basic_credentials({"authorization": value}) is None


def test_missing_header_is_none() -> None:
    assert basic_credentials({}) is None
    assert bearer_token({}) is None


def test_bearer_token() -> None:
    assert bearer_token({"authorization": "Bearer abc.def.ghi"}) == "abc.def.ghi"
    assert bearer_token({"authorization": "bearer   abc.def.ghi  "}) == "abc.def.ghi"
    assert bearer_token({"authorization": "Bearer"}) is None
    assert bearer_token({"authorization": "Basic abc"}) is None


def test_challenges() -> None:
    assert basic_challenge("Registry Realm") == 'Basic realm="Registry Realm"'
    assert bearer_challenge("https://auth/token", "reg", "") == (
        'Bearer realm="https://auth/token",service="reg"'
    )
    assert bearer_challenge(
        "https://auth/token", "reg", "repository:a/b:pull", "invalid_token"
    ) == (
        'Bearer realm="https://auth/token",service="reg",scope="repository:a/b:pull",'
        'error="invalid_token"'
    )
