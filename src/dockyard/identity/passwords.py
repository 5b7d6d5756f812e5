"""Password hashes: Argon2id (argon2-cffi), checked off the event loop.

The cost follows OWASP's recommendation for Argon2id (19 MiB, two passes, one lane): about
30 ms a check on one core, paid at each token request with a password, not at each registry
request. A hash made with other parameters still verifies (they are stored in it).
"""

from __future__ import annotations

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["Passwords"]


class Passwords:
    def __init__(
        self, *, time_cost: int = 2, memory_cost: int = 19 * 1024, parallelism: int = 1
    ) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism
        )
        # Checked when the user is unknown, so that a wrong name costs what a wrong password
        # costs and the time of an answer does not tell which names exist.
        self._decoy = self._hasher.hash("decoy password")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches; with no hash (unknown user), a decoy is checked so
        that the answer takes as long, and is False."""
        try:
            self._hasher.verify(password_hash or self._decoy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return password_hash is not None

    async def averify(self, password_hash: str | None, password: str) -> bool:
        """:meth:`verify` in a worker thread: a check takes tens of milliseconds."""
        return await anyio.to_thread.run_sync(self.verify, password_hash, password)
