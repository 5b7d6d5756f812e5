"""The LDAP directory against a real slapd: the search and the bind, StartTLS and ldaps with
certificate checks, refusals (wrong password, outside the search base, empty password,
filter injection, ambiguous names), and a directory that cannot answer."""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from auth.slapd import (
    DEVELOPERS,
    GROUPS,
    PASSWORDS,
    PEOPLE,
    READERS,
    SERVICE_DN,
    Slapd,
    ldap_options,
    make_ca,
    slapd_server,
)
from dockyard.auth.options import AuthConfigError
from dockyard.identity.external import DirectoryUnavailable, Team
from dockyard.identity.ldap import LdapDirectory, LdapSettings, normalize_dn


@pytest.fixture(scope="module")
def slapd(
    tmp_path_factory: pytest.TempPathFactory, unused_tcp_port_factory: Callable[[], int]
) -> Iterator[Slapd]:
    yield from slapd_server(tmp_path_factory.mktemp("slapd"), unused_tcp_port_factory)


def settings(slapd: Slapd, **overrides: Any) -> LdapSettings:
    # Plain LDAP unless a test asks for TLS; a key set to None is left out.
    params = ldap_options(slapd, **{"starttls": None, "cafile": None, **overrides})
    return LdapSettings.from_options({k: v for k, v in params.items() if v is not None})


def directory(slapd: Slapd, **overrides: Any) -> LdapDirectory:
    return LdapDirectory(settings(slapd, **overrides))


# -- logging in ----------------------------------------------------------------------------------


async def test_login_finds_the_user_and_its_groups(slapd: Slapd) -> None:
    found = await directory(slapd).authenticate("carol", PASSWORDS["Carol"])
    assert found is not None
    # The name as the directory spells it; the account layer lower-cases it.
    assert (found.dn, found.name) == (f"uid=Carol,{PEOPLE}", "Carol")
    assert found.groups == {normalize_dn(DEVELOPERS)}
    alice = await directory(slapd).authenticate("alice", PASSWORDS["alice"])
    assert alice is not None
    assert alice.groups == {normalize_dn(READERS)}


async def test_without_a_group_base_no_groups_are_read(slapd: Slapd) -> None:
    found = await directory(slapd, groupsearchbase=None, groups=None).authenticate(
        "carol", PASSWORDS["Carol"]
    )
    assert found is not None
    assert found.groups == frozenset()


@pytest.mark.parametrize(
    ("login", "password"),
    [
        ("alice", "wrong"),
        ("alice", PASSWORDS["dave"]),
        ("nobody", "whatever"),
        # eve exists, with this password, but outside ou=people.
        ("eve", PASSWORDS["eve"]),
        # Two entries answer to uid=twin: neither is chosen.
        ("twin", PASSWORDS["twin"]),
        # Filter characters are escaped, never interpreted.
        ("*", PASSWORDS["alice"]),
        ("al*", PASSWORDS["alice"]),
        ("alice)(uid=*", PASSWORDS["alice"]),
        ("*)(|(uid=*", PASSWORDS["alice"]),
        ("alice\\", PASSWORDS["alice"]),
        ("", PASSWORDS["alice"]),
    ],
)
async def test_refused(slapd: Slapd, login: str, password: str) -> None:
    assert await directory(slapd).authenticate(login, password) is None


async def test_user_outside_the_search_base_logs_in_with_a_wider_base(slapd: Slapd) -> None:
    # The same login works when the base includes it: the refusal above is the base's doing.
    wide = directory(slapd, usersearchbase="dc=example,dc=com")
    found = await wide.authenticate("eve", PASSWORDS["eve"])
    assert found is not None
    assert found.dn == "uid=eve,ou=contractors,dc=example,dc=com"


async def test_empty_password_is_refused_though_the_server_would_accept_it(
    slapd: Slapd,
) -> None:
    ldapwhoami = shutil.which("ldapwhoami")
    if ldapwhoami is None:
        pytest.skip("ldapwhoami is not installed (apt-get install ldap-utils)")
    # What the check guards against: a DN with an empty password is an "unauthenticated
    # bind", which the server accepts (as anonymous).
    done = await anyio.run_process(
        [ldapwhoami, "-x", "-H", slapd.url, "-D", f"uid=alice,{PEOPLE}", "-w", ""], check=False
    )
    assert done.returncode == 0, done.stderr
    assert b"anonymous" in done.stdout
    assert await directory(slapd).authenticate("alice", "") is None


# -- TLS -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["starttls", "ldaps", "starttls-localhost"])
async def test_tls_with_the_directory_ca(slapd: Slapd, how: str) -> None:
    overrides: dict[str, Any] = {"cafile": str(slapd.ca_file)}
    if how == "ldaps":
        overrides["url"] = slapd.ldaps_url
    else:
        overrides["starttls"] = True
        if how == "starttls-localhost":
            overrides["url"] = f"ldap://localhost:{slapd.port}"
    found = await directory(slapd, **overrides).authenticate("alice", PASSWORDS["alice"])
    assert found is not None
    assert found.name == "alice"


async def test_tls_refuses_a_certificate_from_another_ca(slapd: Slapd, tmp_path: Path) -> None:
    other = tmp_path / "other-ca.pem"
    other.write_bytes(make_ca("Someone else").cert_pem)
    for overrides in (
        {"starttls": True, "cafile": str(other)},
        {"url": slapd.ldaps_url, "cafile": str(other)},
        # Without a cafile: the system's CAs, which do not know the test CA.
        {"starttls": True},
    ):
        with pytest.raises(DirectoryUnavailable, match="certificate verify failed"):
            await directory(slapd, **overrides).authenticate("alice", PASSWORDS["alice"])


async def test_tls_refuses_a_certificate_for_another_host(slapd: Slapd) -> None:
    wrong_host = directory(
        slapd, url=f"ldaps://127.0.0.2:{slapd.tls_port}", cafile=str(slapd.ca_file)
    )
    with pytest.raises(DirectoryUnavailable, match=r"127\.0\.0\.2"):
        await wrong_host.authenticate("alice", PASSWORDS["alice"])


async def test_starttls_refused_by_a_server_without_it(slapd: Slapd) -> None:
    # ldap:// on the ldaps port: the server speaks TLS first, so nothing sensible comes back.
    odd = directory(slapd, url=f"ldap://127.0.0.1:{slapd.tls_port}", starttls=True, timeout="1s")
    with pytest.raises(DirectoryUnavailable):
        await odd.authenticate("alice", PASSWORDS["alice"])


# -- a directory that cannot answer ----------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_unreachable_server(slapd: Slapd) -> None:
    down = directory(slapd, url=f"ldap://127.0.0.1:{_closed_port()}")
    started = time.monotonic()
    with pytest.raises(DirectoryUnavailable, match=r"127\.0\.0\.1"):
        await down.authenticate("alice", PASSWORDS["alice"])
    assert time.monotonic() - started < 2


async def test_a_server_that_never_answers_is_given_up_after_the_timeout(slapd: Slapd) -> None:
    with socket.socket() as silent:
        # Connections complete in the backlog, but nothing is ever read or written.
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        hung = directory(slapd, url=f"ldap://127.0.0.1:{port}", timeout="1s")
        started = time.monotonic()
        # Given up by the deadline or by the socket's own timeout, whichever comes first.
        with pytest.raises(DirectoryUnavailable):
            await hung.authenticate("alice", PASSWORDS["alice"])
        assert time.monotonic() - started < 2.5


async def test_the_next_url_is_tried_when_the_first_is_down(slapd: Slapd) -> None:
    urls = f"ldap://127.0.0.1:{_closed_port()} {slapd.url}"
    found = await directory(slapd, url=urls).authenticate("alice", PASSWORDS["alice"])
    assert found is not None


async def test_a_service_account_that_cannot_bind_makes_the_directory_unavailable(
    slapd: Slapd,
) -> None:
    wrong = directory(slapd, bindpassword="not-the-service-password")
    with pytest.raises(DirectoryUnavailable, match="service account"):
        await wrong.authenticate("alice", PASSWORDS["alice"])


async def test_a_missing_search_base_makes_the_directory_unavailable(slapd: Slapd) -> None:
    missing = directory(slapd, usersearchbase="ou=nowhere,dc=example,dc=com")
    with pytest.raises(DirectoryUnavailable, match="search failed"):
        await missing.authenticate("alice", PASSWORDS["alice"])


async def test_an_anonymous_search_that_sees_nothing_makes_the_directory_unavailable(
    slapd: Slapd,
) -> None:
    # This directory lets only bound users read: without the service account even the base
    # is hidden, which is a configuration to fix, not a wrong password.
    anonymous = directory(slapd, binddn=None, bindpassword=None)
    with pytest.raises(DirectoryUnavailable, match="noSuchObject"):
        await anonymous.authenticate("alice", PASSWORDS["alice"])


# -- configuration ---------------------------------------------------------------------------------

GOOD: dict[str, Any] = {
    "url": "ldap://ldap.example.com",
    "usersearchbase": PEOPLE,
}


def test_defaults() -> None:
    parsed = LdapSettings.from_options(GOOD)
    assert parsed.url == "ldap://ldap.example.com"
    assert parsed.user_filter == "(uid={username})"
    assert parsed.user_attribute == "uid"
    assert parsed.group_filter == "(member={dn})"
    assert parsed.timeout == 5.0
    assert not parsed.starttls
    assert parsed.groups == {}


def test_group_map_is_normalized() -> None:
    parsed = LdapSettings.from_options(
        {
            **GOOD,
            "groupsearchbase": GROUPS,
            "groups": {"CN=Developers, OU=Groups,DC=example,DC=com": "acme/developers"},
        }
    )
    assert parsed.groups == {normalize_dn(DEVELOPERS): Team("acme", "developers")}


@pytest.mark.parametrize(
    ("params", "path", "message"),
    [
        ({"url": None}, "auth.builtin.ldap.url", "required"),
        ({"url": "http://ldap"}, "auth.builtin.ldap.url", "expected ldap://"),
        ({"url": "  "}, "auth.builtin.ldap.url", "required"),
        ({"url": "ldap://host:99999"}, "auth.builtin.ldap.url", "expected ldap://"),
        (
            {"url": "ldaps://host", "starttls": True},
            "auth.builtin.ldap.starttls",
            "TLS already",
        ),
        ({"starttls": "yes"}, "auth.builtin.ldap.starttls", "true or false"),
        ({"usersearchbase": None}, "auth.builtin.ldap.usersearchbase", "required"),
        ({"usersearchbase": "not a dn"}, "auth.builtin.ldap.usersearchbase", "not a DN"),
        ({"userfilter": "(uid=alice)"}, "auth.builtin.ldap.userfilter", "{username}"),
        ({"userfilter": "(uid={username}"}, "auth.builtin.ldap.userfilter", "not an LDAP"),
        ({"groupfilter": "(member=x)"}, "auth.builtin.ldap.groupfilter", "{dn}"),
        ({"binddn": SERVICE_DN}, "auth.builtin.ldap.bindpassword", "required with binddn"),
        ({"bindpassword": "x"}, "auth.builtin.ldap.binddn", "required with bindpassword"),
        ({"timeout": "soon"}, "auth.builtin.ldap.timeout", "invalid duration"),
        ({"cafile": "/nonexistent/ca.pem"}, "auth.builtin.ldap.cafile", "cannot load"),
        ({"groups": {DEVELOPERS: "acme/developers"}}, "auth.builtin.ldap.groupsearchbase", ""),
        (
            {"groupsearchbase": GROUPS, "groups": {DEVELOPERS: "acme"}},
            f"auth.builtin.ldap.groups.{DEVELOPERS}",
            "organization/team",
        ),
        (
            {"groupsearchbase": GROUPS, "groups": {"a=b=c,,": "acme/dev"}},
            "auth.builtin.ldap.groups.a=b=c,,",
            "not a DN",
        ),
        ({"groups": ["x"]}, "auth.builtin.ldap.groups", "must map"),
        ({"userbase": PEOPLE}, "auth.builtin.ldap.userbase", "unknown parameter"),
    ],
)
def test_bad_settings(params: dict[str, Any], path: str, message: str) -> None:
    merged = {k: v for k, v in {**GOOD, **params}.items() if v is not None}
    with pytest.raises(AuthConfigError) as caught:
        LdapSettings.from_options(merged)
    assert caught.value.path == path
    assert message in caught.value.reason


def test_not_a_mapping() -> None:
    with pytest.raises(AuthConfigError, match=r"auth\.builtin\.ldap: must be a mapping"):
        LdapSettings.from_options("ldap://host")
