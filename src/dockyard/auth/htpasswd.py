"""``auth.htpasswd``: HTTP Basic authentication against an Apache htpasswd file of bcrypt
entries, as Distribution does. Any authenticated user may do everything.

- The file is read at start-up (a syntax error refuses to start) and read again whenever its
  modification time, size or inode changes, so users are added or removed without a restart.
  A file that turns bad while running authenticates nobody until it is fixed.
- A missing file is created with the user ``docker`` and a random password, which is logged
  once, as Distribution documents.
- Only bcrypt hashes count; entries with another hash are ignored, with a warning.
- An unknown user costs one bcrypt comparison against a dummy hash, so that it cannot be told
  from a wrong password by its answer or its timing.
- bcrypt runs in a worker thread. A successful check is remembered (an HMAC of user, hash and
  password under a per-process random key) so that the many requests of one push do not each
  pay for bcrypt; a changed hash in the file no longer matches what was remembered.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import logging
import os
import re
import secrets
import struct
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio.to_thread
import bcrypt

from dockyard.auth.base import Access, Grant, RequestInfo
from dockyard.auth.challenge import basic_challenge, basic_credentials
from dockyard.auth.options import AuthConfigError, Options
from dockyard.auth.scope import access_detail
from dockyard.errors import Unauthorized

__all__ = [
    "DEFAULT_COST",
    "DEFAULT_USER",
    "HtpasswdAccess",
    "HtpasswdError",
    "HtpasswdFile",
    "HtpasswdTable",
    "parse_htpasswd",
    "provision",
]

log = logging.getLogger("dockyard.auth.htpasswd")

DEFAULT_USER = "docker"
DEFAULT_COST = 10  # Go's bcrypt.DefaultCost
# bcrypt reads at most 72 bytes of a password; longer ones are cut, as Go and htpasswd do.
MAX_PASSWORD = 72
CACHE_SIZE = 1024
_BCRYPT = re.compile(r"\$2[aby]\$(?P<cost>[0-9]{2})\$[./A-Za-z0-9]{53}")
_MIN_COST, _MAX_COST = 4, 31


class HtpasswdError(ValueError):
    """A line that is not ``user:hash``, a comment or blank."""


@dataclass(frozen=True)
class HtpasswdTable:
    """The users of one version of the file: name -> bcrypt hash."""

    entries: Mapping[str, bytes] = field(default_factory=dict)
    ignored: Sequence[str] = ()
    """Users whose entry is not a bcrypt hash."""

    @property
    def cost(self) -> int:
        """The most common bcrypt cost, for a dummy hash that takes as long as a real one."""
        costs = collections.Counter(int(h[4:6].decode()) for h in self.entries.values())
        if not costs:
            return DEFAULT_COST
        return max(costs.items(), key=lambda item: (item[1], item[0]))[0]


def parse_htpasswd(text: str) -> HtpasswdTable:
    """Entries of an htpasswd file. Blank lines and lines starting with ``#`` are skipped; a
    later entry for a user replaces an earlier one; a line without ``:`` raises
    :class:`HtpasswdError` naming its number (never its content, which may hold a hash)."""
    entries: dict[str, bytes] = {}
    ignored: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, colon, hashed = line.partition(":")
        if not colon or not user:
            raise HtpasswdError(f"line {number}: not a user:hash entry")
        match = _BCRYPT.fullmatch(hashed)
        if match is None or not _MIN_COST <= int(match["cost"]) <= _MAX_COST:
            entries.pop(user, None)
            ignored.append(user)
            continue
        entries[user] = hashed.encode("ascii")
    return HtpasswdTable(entries, tuple(u for u in ignored if u not in entries))


def provision(path: Path) -> str | None:
    """Create ``path`` with the default user and a random password, unless it exists; the
    password if this call created the file. Safe when several workers race to do it: the file
    appears whole (a hard link of a finished temporary file) and only one of them wins."""
    if path.exists():
        return None
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    password = secrets.token_urlsafe(32)
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(DEFAULT_COST))
    fd, scratch = tempfile.mkstemp(dir=path.parent, prefix=".htpasswd-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(DEFAULT_USER.encode() + b":" + hashed + b"\n")
        try:
            os.link(scratch, path)
        except FileExistsError:
            return None
    finally:
        os.unlink(scratch)
    return password


def _signature(stat: os.stat_result) -> tuple[int, ...]:
    # ctime too: it changes on every write and cannot be set back by a tool.
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


class HtpasswdFile:
    """The file and the table read from its current version."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._signature: tuple[int, ...] | None = None
        self._table = HtpasswdTable()

    def load(self) -> HtpasswdTable:
        """Read the file now; :class:`OSError` or :class:`HtpasswdError` if it cannot be."""
        stat = os.stat(self.path)
        table = parse_htpasswd(self.path.read_text(encoding="utf-8", errors="replace"))
        for user in table.ignored:
            log.warning("%s: user %r has no bcrypt hash; entry ignored", self.path, user)
        self._signature, self._table = _signature(stat), table
        return table

    def current(self) -> HtpasswdTable:
        """The table, read again first if the file changed since it was last read."""
        try:
            signature = _signature(os.stat(self.path))
        except OSError as exc:
            return self._fail(None, f"cannot read the htpasswd file: {exc.strerror}")
        if signature == self._signature:
            return self._table
        try:
            return self.load()
        except (OSError, HtpasswdError) as exc:
            return self._fail(signature, f"htpasswd file not reloaded: {exc}")

    def _fail(self, signature: tuple[int, ...] | None, message: str) -> HtpasswdTable:
        # Nobody is authenticated by a file that cannot be read; said once per change.
        if self._signature != signature or self._table.entries:
            log.error("%s: %s; no user can log in until it is fixed", self.path, message)
        self._signature, self._table = signature, HtpasswdTable()
        return self._table


class HtpasswdAccess:
    """The ``AccessController`` for ``auth.htpasswd``."""

    def __init__(self, realm: str, file: HtpasswdFile, *, cache_size: int = CACHE_SIZE) -> None:
        self.realm = realm
        self.file = file
        self._cache_size = cache_size
        self._verified: collections.OrderedDict[bytes, None] = collections.OrderedDict()
        self._key = secrets.token_bytes(32)
        self._dummies: dict[int, bytes] = {}

    @classmethod
    def from_options(cls, params: Mapping[str, object]) -> HtpasswdAccess:
        options = Options("htpasswd", params, frozenset({"realm", "path"}))
        realm = options.text("realm")
        path = Path(options.text("path"))
        try:
            password = provision(path)
        except OSError as exc:
            raise AuthConfigError(options.path("path"), f"cannot create {path}: {exc}") from None
        if password is not None:
            log.warning(
                "htpasswd file %s was missing: created it with user %r and password %s",
                path,
                DEFAULT_USER,
                password,
            )
        file = HtpasswdFile(path)
        try:
            file.load()
        except OSError as exc:
            raise AuthConfigError(options.path("path"), f"cannot read {path}: {exc}") from None
        except HtpasswdError as exc:
            raise AuthConfigError(options.path("path"), f"{path}: {exc}") from None
        return cls(realm, file)

    async def authorize(self, request: RequestInfo, wanted: Sequence[Access]) -> Grant:
        credentials = basic_credentials(request.headers)
        if credentials is None:
            raise self._challenge(wanted)
        user, password = credentials
        if not await self._check(user, password):
            log.info("authentication failed for user %r from %s", user, request.client)
            raise self._challenge(wanted)
        return Grant(subject=user)

    def _challenge(self, wanted: Sequence[Access]) -> Unauthorized:
        return Unauthorized(
            access_detail(wanted) or None,
            headers={"WWW-Authenticate": basic_challenge(self.realm)},
        )

    async def _check(self, user: str, password: str) -> bool:
        table = self.file.current()
        secret = password.encode("utf-8")[:MAX_PASSWORD]
        stored = table.entries.get(user)
        if stored is None:
            # The same work as for a real user, and the same answer as a wrong password.
            dummy = await self._dummy(table.cost)
            await anyio.to_thread.run_sync(bcrypt.checkpw, secret, dummy)
            return False
        key = self._cache_key(user, stored, secret)
        if key in self._verified:
            self._verified.move_to_end(key)
            return True
        if not await anyio.to_thread.run_sync(bcrypt.checkpw, secret, stored):
            return False
        self._verified[key] = None
        while len(self._verified) > self._cache_size:
            self._verified.popitem(last=False)
        return True

    def _cache_key(self, user: str, stored: bytes, secret: bytes) -> bytes:
        mac = hmac.new(self._key, digestmod=hashlib.sha256)
        for part in (user.encode("utf-8"), stored, secret):
            mac.update(struct.pack(">I", len(part)) + part)
        return mac.digest()

    async def _dummy(self, cost: int) -> bytes:
        dummy = self._dummies.get(cost)
        if dummy is None:
            salt = bcrypt.gensalt(cost)
            dummy = await anyio.to_thread.run_sync(
                bcrypt.hashpw, secrets.token_urlsafe(16).encode(), salt
            )
            self._dummies[cost] = dummy
        return dummy
