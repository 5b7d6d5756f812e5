import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard.digest import Digest, compute
from dockyard.errors import DigestInvalid

SHA256_EMPTY = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_parse_sha256_and_sha512() -> None:
    assert str(Digest.parse(SHA256_EMPTY)) == SHA256_EMPTY
    sha512 = "sha512:" + hashlib.sha512(b"").hexdigest()
    assert Digest.parse(sha512).algorithm == "sha512"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sha256",
        "sha256:",
        ":abc",
        "sha256:" + "a" * 63,
        "sha256:" + "a" * 65,
        "sha256:" + "A" * 64,
        "sha256:" + "g" * 64,
        "sha512:" + "a" * 64,
        "SHA256:" + "a" * 64,
        "sha256:" + "a" * 64 + "\n",
        "sha256 :" + "a" * 64,
    ],
)
def test_malformed_digests_are_refused(text: str) -> None:
    with pytest.raises(DigestInvalid):
        Digest.parse(text)


def test_unknown_algorithm_is_invalid() -> None:
    with pytest.raises(DigestInvalid, match="unsupported digest algorithm"):
        Digest.parse("md5:d41d8cd98f00b204e9800998ecf8427e")


def test_compute_matches_hashlib() -> None:
    assert str(compute(b"")) == SHA256_EMPTY
    assert compute(b"x", "sha512").encoded == hashlib.sha512(b"x").hexdigest()


@given(st.text(max_size=200))
def test_parse_raises_only_registry_errors(text: str) -> None:
    try:
        parsed = Digest.parse(text)
    except DigestInvalid:
        return
    assert str(parsed) == text
