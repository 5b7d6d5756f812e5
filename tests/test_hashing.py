import hashlib
import os

import pytest

from dockyard import hashing


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
def test_state_round_trip_continues_the_hash(algorithm: str) -> None:
    data = os.urandom(300_001)
    first = hashing.new(algorithm)
    first.update(data[:12345])
    resumed = hashing.new(algorithm, first.state())
    resumed.update(data[12345:])
    assert resumed.hexdigest() == hashlib.new(algorithm, data).hexdigest()


def test_hexdigest_does_not_finish_the_hash() -> None:
    running = hashing.new("sha256")
    running.update(b"ab")
    assert running.hexdigest() == hashlib.sha256(b"ab").hexdigest()
    running.update(b"c")
    assert running.hexdigest() == hashlib.sha256(b"abc").hexdigest()


def test_libcrypto_is_available_here() -> None:
    # Without libcrypto, uploads still work but each chunk re-reads the upload to resume.
    assert hashing.available()
    assert hashing.new("sha256").resumable


def test_wrong_state_size_is_refused() -> None:
    with pytest.raises(ValueError, match="wrong size"):
        hashing.new("sha256", b"short")
