"""Argon2id password hashes."""

from __future__ import annotations

from dockyard.identity.passwords import Passwords


async def test_hash_and_verify() -> None:
    passwords = Passwords(time_cost=1, memory_cost=1024)
    stored = passwords.hash("correct horse")
    assert stored.startswith("$argon2id$")
    assert stored != passwords.hash("correct horse")  # salted
    assert passwords.verify(stored, "correct horse")
    assert not passwords.verify(stored, "correct horse ")
    assert not passwords.verify(stored, "")
    assert await passwords.averify(stored, "correct horse")
    assert not await passwords.averify(stored, "wrong")


def test_no_hash_never_verifies() -> None:
    passwords = Passwords(time_cost=1, memory_cost=1024)
    # Not even the decoy's own password.
    assert not passwords.verify(None, "decoy password")
    assert not passwords.verify("", "")
    assert not passwords.verify("not-a-hash", "x")


def test_hashes_of_other_parameters_verify() -> None:
    strong = Passwords()
    assert Passwords(time_cost=1, memory_cost=1024).verify(strong.hash("pw"), "pw")
