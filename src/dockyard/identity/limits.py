"""Failed logins, limited per account and per client address.

Failures are counted in fixed windows (``failurewindow``, 15 minutes by default) under two
keys: the client address alone (``maxfailuresperaddress``, default 50) and the account *as
tried from that address* (``maxfailuresperaccount``, default 10). Past either limit the token
server answers ``429 TOOMANYREQUESTS`` with ``Retry-After`` before it checks any credential,
so guessing stops for the rest of the window.

Why the account's limit is keyed on (account, address) rather than on the account alone:
with a global per-account limit, anyone who knows a user's name could keep that user locked
out from anywhere by guessing at it. Keyed per address, an attacker only locks out their own
address, and the user logs in from theirs. Guessing from many addresses is bounded by each
address's limit and by the cost of every guess (an Argon2 check, or a 256-bit token); the
audit log records every failure for whoever watches for such a spread.

Counters live in the metadata database (``login_failures``), so every replica sees the
same counts; a success clears the (account, address) counter.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dockyard.identity.base import IdentityStore

__all__ = ["LoginLimiter", "LoginLimits"]


@dataclass(frozen=True, slots=True)
class LoginLimits:
    per_account: int = 10
    per_address: int = 50
    window: float = 15 * 60.0


def _now() -> datetime:
    return datetime.now(UTC)


class LoginLimiter:
    def __init__(
        self,
        store: IdentityStore,
        limits: LoginLimits,
        *,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.store = store
        self.limits = limits
        self.window = timedelta(seconds=limits.window)
        self.clock = clock

    @staticmethod
    def _keys(account: str, address: str | None) -> tuple[str, str]:
        where = address or "-"
        return f"account:{account}@{where}", f"address:{where}"

    async def retry_after(self, account: str, address: str | None) -> int | None:
        """Seconds until ``account`` may try again from ``address``; None if it may now."""
        account_key, address_key = self._keys(account, address)
        counted = await self.store.login_failures([account_key, address_key])
        now = self.clock()
        wait = 0.0
        for key, limit in (
            (account_key, self.limits.per_account),
            (address_key, self.limits.per_address),
        ):
            if key not in counted:
                continue
            start, failures = counted[key]
            left = (start + self.window - now).total_seconds()
            if failures >= limit and left > 0:
                wait = max(wait, left)
        return max(1, math.ceil(wait)) if wait > 0 else None

    async def failed(self, account: str, address: str | None) -> None:
        await self.store.record_login_failure(
            self._keys(account, address), self.clock(), self.window
        )

    async def succeeded(self, account: str, address: str | None) -> None:
        account_key, _ = self._keys(account, address)
        # Read first: most logins have no failures to clear, and a read takes no write lock.
        if await self.store.login_failures([account_key]):
            await self.store.clear_login_failures([account_key])
