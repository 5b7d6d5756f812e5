"""LDAP (OpenLDAP, Active Directory) as a directory of users for ``auth.builtin``::

    auth:
      builtin:
        ldap:
          url: ldap://ldap.example.com        # or ldaps://...; several, space-separated
          starttls: true                      # upgrade ldap:// with StartTLS (default false)
          cafile: /etc/dockyard/ldap-ca.pem   # CAs to trust for TLS (default: the system's)
          timeout: 5s                         # the longest a login may wait (default 5s)
          binddn: cn=dockyard,ou=services,dc=example,dc=com
          bindpassword: secret                # the service account that searches
          usersearchbase: ou=people,dc=example,dc=com
          userfilter: (&(objectClass=inetOrgPerson)(uid={username}))   # default (uid={username})
          userattribute: uid                  # names the local user (default uid)
          groupsearchbase: ou=groups,dc=example,dc=com   # optional
          groupfilter: (member={dn})          # default (member={dn})
          groups:                             # group DN -> organization/team
            cn=dev,ou=groups,dc=example,dc=com: acme/developers

A login searches the user with the service account (``{username}`` in the filter is the name
typed, its filter characters escaped), then binds as the DN found with the password given.
An empty password is refused before anything is sent: to an LDAP server a simple bind with a
DN and no password is an "unauthenticated bind", which succeeds. Groups are those under
``groupsearchbase`` that ``groupfilter`` finds (``{dn}``: the user's DN, ``{username}``: the
naming attribute's value, both escaped); for Active Directory's nested groups use
``(member:1.2.840.113556.1.4.1941:={dn})``.

TLS always checks the server's certificate and its host name (ldap3 checks neither by
default). ldap3 blocks, so each login runs in a worker thread
of a pool of its own (a hung server cannot take the threads password checks need), and is
given up after ``timeout``: the login is then answered 503.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
from ldap3 import NONE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException
from ldap3.operation.search import parse_filter
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn

from dockyard.auth.options import AuthConfigError, Options
from dockyard.identity.base import InvalidName, check_name
from dockyard.identity.external import DirectoryUnavailable, DirectoryUser, Team

__all__ = ["LdapDirectory", "LdapSettings", "normalize_dn"]

log = logging.getLogger("dockyard.identity.ldap")

_KNOWN = frozenset(
    {
        "url",
        "starttls",
        "cafile",
        "timeout",
        "binddn",
        "bindpassword",
        "usersearchbase",
        "userfilter",
        "userattribute",
        "groupsearchbase",
        "groupfilter",
        "groups",
    }
)
_URL = re.compile(
    r"(?P<scheme>ldaps?)://(?P<host>\[[0-9a-fA-F:.]+\]|[^:/\[\]\s]+)(?::(?P<port>\d{1,5}))?/?"
)
_INVALID_CREDENTIALS = 49
_SIZE_LIMIT_EXCEEDED = 4
# Logins waiting on the directory at once, per process; more wait their turn (within timeout).
MAX_CONCURRENT = 8
# Enough to hold the few DNs a login reads; a group search finding more is cut short.
MAX_GROUPS = 1000


def normalize_dn(dn: str) -> str:
    """``dn`` in the form group DNs are compared in: no spaces around separators, attribute
    types and values lower-cased (LDAP compares both case-insensitively, as a rule)."""
    parts = parse_dn(dn, escape=False, strip=True)
    return "".join(f"{kind.lower()}={value.lower()}{separator}" for kind, value, separator in parts)


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int | None
    ssl: bool


def _substitute(template: str, values: Mapping[str, str]) -> str:
    """``template`` with each ``{name}`` replaced by its value, filter characters escaped."""
    out = template
    for name, value in values.items():
        out = out.replace("{" + name + "}", escape_filter_chars(value))
    return out


def _check_filter(options: Options, key: str, text: str, names: tuple[str, ...]) -> str:
    if not any("{" + name + "}" in text for name in names):
        wanted = " or ".join("{" + name + "}" for name in names)
        raise AuthConfigError(options.path(key), f"must contain {wanted}")
    try:
        sample = _substitute(text, dict.fromkeys(names, "x"))
        parse_filter(sample, None, True, True, None, False)  # type: ignore[no-untyped-call]
    except LDAPException:
        raise AuthConfigError(options.path(key), f"not an LDAP filter: {text[:200]!r}") from None
    return text


def _check_dn(options: Options, key: str, text: str) -> str:
    try:
        parse_dn(text, strip=True)
    except LDAPException:
        raise AuthConfigError(options.path(key), f"not a DN: {text[:200]!r}") from None
    return text


@dataclass(frozen=True)
class LdapSettings:
    endpoints: tuple[Endpoint, ...]
    starttls: bool
    cafile: str | None
    timeout: float
    bind_dn: str | None
    bind_password: str | None
    user_base: str
    user_filter: str
    user_attribute: str
    group_base: str | None
    group_filter: str
    groups: Mapping[str, Team]
    """Normalized group DN -> the team its members are put in."""

    @property
    def url(self) -> str:
        return " ".join(
            f"{'ldaps' if e.ssl else 'ldap'}://{e.host}{f':{e.port}' if e.port else ''}"
            for e in self.endpoints
        )

    @classmethod
    def from_options(cls, params: object) -> LdapSettings:
        """Read and check ``auth.builtin.ldap``; an :class:`AuthConfigError` names the key."""
        if not isinstance(params, Mapping):
            raise AuthConfigError("auth.builtin.ldap", "must be a mapping")
        options = Options("builtin.ldap", params, _KNOWN)
        endpoints = cls._endpoints(options)
        starttls = options.flag("starttls")
        if starttls and any(e.ssl for e in endpoints):
            raise AuthConfigError(
                options.path("starttls"), "StartTLS upgrades ldap:// URLs; ldaps:// is TLS already"
            )
        cafile = options.optional_text("cafile")
        if cafile is not None:
            try:
                ssl.create_default_context(cafile=cafile)
            except (OSError, ssl.SSLError) as exc:
                raise AuthConfigError(
                    options.path("cafile"), f"cannot load {cafile}: {exc}"
                ) from None
        bind_dn = options.optional_text("binddn")
        bind_password = options.optional_text("bindpassword")
        if bind_dn is not None:
            _check_dn(options, "binddn", bind_dn)
            if bind_password is None:
                # An empty password would make the bind an anonymous one, silently.
                raise AuthConfigError(options.path("bindpassword"), "required with binddn")
        elif bind_password is not None:
            raise AuthConfigError(options.path("binddn"), "required with bindpassword")
        group_base = options.optional_text("groupsearchbase")
        if group_base is not None:
            _check_dn(options, "groupsearchbase", group_base)
        groups = cls._groups(options)
        if groups and group_base is None:
            raise AuthConfigError(
                options.path("groupsearchbase"), "required to map groups to teams"
            )
        return cls(
            endpoints=endpoints,
            starttls=starttls,
            cafile=cafile,
            timeout=options.duration("timeout", 5.0, minimum=0.1),
            bind_dn=bind_dn,
            bind_password=bind_password,
            user_base=_check_dn(options, "usersearchbase", options.text("usersearchbase")),
            user_filter=_check_filter(
                options,
                "userfilter",
                options.optional_text("userfilter") or "(uid={username})",
                ("username",),
            ),
            user_attribute=options.optional_text("userattribute") or "uid",
            group_base=group_base,
            group_filter=_check_filter(
                options,
                "groupfilter",
                options.optional_text("groupfilter") or "(member={dn})",
                ("dn", "username"),
            ),
            groups=groups,
        )

    @staticmethod
    def _endpoints(options: Options) -> tuple[Endpoint, ...]:
        text = options.text("url")
        endpoints = []
        for url in text.split():
            match = _URL.fullmatch(url)
            port = int(match["port"]) if match and match["port"] else None
            if match is None or (port is not None and not 0 < port < 65536):
                raise AuthConfigError(
                    options.path("url"),
                    f"expected ldap://host[:port] or ldaps://host[:port], got {url[:200]!r}",
                )
            host = match["host"].strip("[]")
            endpoints.append(Endpoint(host, port, match["scheme"] == "ldaps"))
        if not endpoints:
            raise AuthConfigError(options.path("url"), "required")
        return tuple(endpoints)

    @staticmethod
    def _groups(options: Options) -> dict[str, Team]:
        value = options.params.get("groups")
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise AuthConfigError(options.path("groups"), "must map group DNs to organization/team")
        groups: dict[str, Team] = {}
        for dn, target in value.items():
            path = f"{options.path('groups')}.{dn}"
            if not isinstance(dn, str) or not isinstance(target, str):
                raise AuthConfigError(path, "must map a group DN to organization/team")
            organization, _, team = target.partition("/")
            try:
                groups[normalize_dn(dn)] = Team(check_name(organization), check_name(team))
            except LDAPException:
                raise AuthConfigError(path, "not a DN") from None
            except InvalidName as exc:
                raise AuthConfigError(path, f"expected organization/team: {exc}") from None
        return groups


class _CheckedTls(Tls):
    """ldap3's ``Tls``, but with the standard library's checks in the handshake itself (the
    certificate chain and the host name, TLS 1.2 at least): ldap3 checks the name after the
    handshake with ``ssl.match_hostname``, deprecated since Python 3.7."""

    def __init__(self, cafile: str | None) -> None:
        super().__init__(validate=ssl.CERT_REQUIRED, ca_certs_file=cafile)
        self.context = ssl.create_default_context(cafile=cafile)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2

    def wrap_socket(self, connection: Connection, do_handshake: bool = False) -> None:
        connection.socket = self.context.wrap_socket(
            connection.socket,
            server_side=False,
            do_handshake_on_connect=do_handshake,
            server_hostname=connection.server.host,
        )


def _first(value: Any) -> str | None:
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value if isinstance(value, str) and value else None


def _close(connection: Connection) -> None:
    """Unbind and close, whatever state the connection is in (a failed TLS handshake leaves
    ldap3 holding a socket it cannot use)."""
    with contextlib.suppress(LDAPException, OSError):
        connection.unbind()
    raw = getattr(connection, "socket", None)
    if isinstance(raw, socket.socket):
        with contextlib.suppress(OSError):
            raw.close()


class LdapDirectory:
    """The :class:`dockyard.identity.external.Directory` an LDAP server is."""

    def __init__(self, settings: LdapSettings) -> None:
        self.settings = settings
        self._tls = (
            _CheckedTls(settings.cafile)
            if settings.starttls or any(e.ssl for e in settings.endpoints)
            else None
        )
        self._limiter: anyio.CapacityLimiter | None = None

    async def authenticate(self, login: str, password: str) -> DirectoryUser | None:
        if not login or not password:
            # Never sent: a bind with no password is an anonymous bind, and succeeds.
            return None
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(MAX_CONCURRENT)
        try:
            with anyio.fail_after(self.settings.timeout):
                return await anyio.to_thread.run_sync(
                    self._authenticate,
                    login,
                    password,
                    abandon_on_cancel=True,
                    limiter=self._limiter,
                )
        except TimeoutError:
            raise DirectoryUnavailable(
                f"{self.settings.url}: no answer within {self.settings.timeout:g}s"
            ) from None

    # -- blocking, in a worker thread ------------------------------------------------------------

    def _connect(self, user: str | None, password: str | None) -> tuple[Connection, bool]:
        """A connection to the first server that answers, bound as ``user`` (anonymous if
        None), and whether the bind succeeded; :class:`DirectoryUnavailable` if no server
        could be asked."""
        problems = []
        # Tried in order: the first that answers is used. A new Server each time, since
        # ldap3's remembers addresses that failed once as down for good.
        for endpoint in self.settings.endpoints:
            server = Server(
                endpoint.host,
                port=endpoint.port,
                use_ssl=endpoint.ssl,
                tls=self._tls,
                get_info=NONE,
                connect_timeout=self.settings.timeout,
            )
            connection = Connection(
                server,
                user=user,
                password=password,
                auto_bind=False,
                # Whole seconds: ldap3 packs it into SO_RCVTIMEO.
                receive_timeout=math.ceil(self.settings.timeout),
                auto_referrals=False,
                raise_exceptions=False,
                read_only=True,
            )
            try:
                connection.open()
                if self.settings.starttls:
                    connection.start_tls()
                bound = connection.bind()
            except LDAPException as exc:
                _close(connection)
                problems.append(f"{server.host}:{server.port}: {exc}")
                continue
            if bound or connection.result.get("result") == _INVALID_CREDENTIALS:
                return connection, bound
            result = connection.result.get("description"), connection.result.get("message")
            _close(connection)
            problems.append(f"{server.host}:{server.port}: bind failed: {result}")
        raise DirectoryUnavailable("; ".join(problems))

    def _search(
        self, connection: Connection, base: str, search: str, attributes: list[str], limit: int
    ) -> list[tuple[str, Mapping[str, Any]]]:
        try:
            connection.search(
                base, search, SUBTREE, attributes=attributes, size_limit=limit, types_only=False
            )
        except LDAPException as exc:
            raise DirectoryUnavailable(f"{self.settings.url}: search failed: {exc}") from None
        code = connection.result.get("result")
        if code not in (0, _SIZE_LIMIT_EXCEEDED):
            raise DirectoryUnavailable(
                f"{self.settings.url}: search failed: {connection.result.get('description')}"
            )
        return [
            (entry["dn"], entry.get("attributes", {}))
            for entry in connection.response or []
            if entry.get("type") == "searchResEntry"
        ]

    def _authenticate(self, login: str, password: str) -> DirectoryUser | None:
        settings = self.settings
        service, bound = self._connect(settings.bind_dn, settings.bind_password)
        try:
            if not bound:
                raise DirectoryUnavailable(
                    f"{settings.url}: the service account {settings.bind_dn!r} cannot bind"
                )
            entries = self._search(
                service,
                settings.user_base,
                _substitute(settings.user_filter, {"username": login}),
                [settings.user_attribute],
                2,
            )
            if len(entries) != 1:
                if entries:
                    log.warning("LDAP: %r matches several users; refused", login[:100])
                return None
            dn, attributes = entries[0]
            name = _first(attributes.get(settings.user_attribute))
            if name is None:
                log.warning("LDAP: %s has no %s; refused", dn, settings.user_attribute)
                return None
            user, good = self._connect(dn, password)
            _close(user)
            if not good:
                return None
            groups: frozenset[str] = frozenset()
            if settings.group_base is not None:
                found = self._search(
                    service,
                    settings.group_base,
                    _substitute(settings.group_filter, {"dn": dn, "username": name}),
                    ["1.1"],  # no attributes: the DNs are all we need
                    MAX_GROUPS,
                )
                groups = frozenset(normalize_dn(group) for group, _ in found)
            return DirectoryUser(dn=dn, name=name, groups=groups)
        finally:
            _close(service)
