"""A private, real OpenLDAP server (``slapd``, Debian package ``slapd``) for the LDAP tests.

Each server has a directory of its own (slapd.conf-style config, an mdb database loaded with
``slapadd``), listens on loopback ports of its own, plain (with StartTLS) and ``ldaps://`` (also on
127.0.0.2, which its certificate does not name), with a certificate for ``localhost`` and
``127.0.0.1`` from a throw-away CA made with ``cryptography``. The test directory::

    dc=example,dc=com
    ├── ou=services   cn=dockyard (the service account that searches)
    ├── ou=people     alice, Carol (upper-case uid), dave, bob, twin (x2, see below)
    ├── ou=contractors  eve (outside the user search base)
    └── ou=groups     cn=developers (Carol), cn=readers (alice, dave)

Anonymous users can read nothing; passwords can only be bound with. A bind with a DN and no
password succeeds (as anonymous), as Active Directory allows by default.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = [
    "ADMIN_DN",
    "ADMIN_PASSWORD",
    "BASE",
    "DEVELOPERS",
    "GROUPS",
    "PASSWORDS",
    "PEOPLE",
    "READERS",
    "SERVICE_DN",
    "SERVICE_PASSWORD",
    "Slapd",
    "ldap_options",
    "make_ca",
    "slapd_server",
]

BASE = "dc=example,dc=com"
PEOPLE = f"ou=people,{BASE}"
GROUPS = f"ou=groups,{BASE}"
DEVELOPERS = f"cn=developers,{GROUPS}"
READERS = f"cn=readers,{GROUPS}"
ADMIN_DN = f"cn=admin,{BASE}"
ADMIN_PASSWORD = "admin-secret"
SERVICE_DN = f"cn=dockyard,ou=services,{BASE}"
SERVICE_PASSWORD = "service-secret"
# uid -> password; eve is outside ou=people, twin has two entries in it.
PASSWORDS = {
    "alice": "alice-ldap-pw",
    "Carol": "carol-ldap-pw",
    "dave": "dave-ldap-pw",
    "bob": "bob-ldap-pw",
    "eve": "eve-ldap-pw",
    "twin": "twin-ldap-pw",
}
START_TIMEOUT = 10.0


def _ssha(password: str) -> str:
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def _person(uid: str, parent: str, cn: str | None = None) -> str:
    cn = cn or uid
    return (
        f"dn: uid={uid},{parent}\n"
        "objectClass: inetOrgPerson\n"
        f"uid: {uid}\ncn: {cn}\nsn: {uid}\n"
        f"userPassword: {_ssha(PASSWORDS[uid])}\n"
    )


def _group(dn: str, cn: str, members: list[str]) -> str:
    lines = [f"dn: {dn}", "objectClass: groupOfNames", f"cn: {cn}"]
    lines += [f"member: {member}" for member in members]
    return "\n".join(lines) + "\n"


def directory_ldif() -> str:
    entries = [
        f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n",
        f"dn: ou=services,{BASE}\nobjectClass: organizationalUnit\nou: services\n",
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n",
        f"dn: ou=contractors,{BASE}\nobjectClass: organizationalUnit\nou: contractors\n",
        f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n",
        (
            f"dn: {SERVICE_DN}\nobjectClass: organizationalRole\n"
            "objectClass: simpleSecurityObject\ncn: dockyard\n"
            f"userPassword: {_ssha(SERVICE_PASSWORD)}\n"
        ),
        _person("alice", PEOPLE),
        _person("Carol", PEOPLE),
        _person("dave", PEOPLE),
        _person("bob", PEOPLE),
        _person("eve", f"ou=contractors,{BASE}"),
        _person("twin", PEOPLE),
        # A second entry with uid twin: a login that matches two users is refused.
        (
            f"dn: cn=twin2,{PEOPLE}\nobjectClass: inetOrgPerson\nuid: twin\ncn: twin2\nsn: twin\n"
            f"userPassword: {_ssha(PASSWORDS['twin'])}\n"
        ),
        _group(DEVELOPERS, "developers", [f"uid=Carol,{PEOPLE}"]),
        _group(READERS, "readers", [f"uid=alice,{PEOPLE}", f"uid=dave,{PEOPLE}"]),
    ]
    return "\n".join(entries)


@dataclass(frozen=True)
class CA:
    cert_pem: bytes
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    def issue(self, names: list[str]) -> tuple[bytes, bytes]:
        """A server certificate for ``names`` (DNS names or IP addresses) and its key."""
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = []
        for name in names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                sans.append(x509.DNSName(name))
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return cert.public_bytes(serialization.Encoding.PEM), key_pem


def make_ca(name: str = "Dockyard test CA") -> CA:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CA(cert.public_bytes(serialization.Encoding.PEM), key, cert)


def _binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        pytest.skip(f"{name} is not installed (apt-get install slapd ldap-utils)")
    return found


def _config(workdir: Path) -> str:
    return f"""
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile {workdir}/slapd.pid
argsfile {workdir}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
# A DN with no password binds as anonymous, as on many servers (Active Directory's default),
# so that the refusal of empty passwords is tested against a server that would accept them.
allow bind_anon_dn
TLSCACertificateFile {workdir}/ca.pem
TLSCertificateFile {workdir}/server.pem
TLSCertificateKeyFile {workdir}/server.key
database mdb
maxsize 16777216
suffix "{BASE}"
rootdn "{ADMIN_DN}"
rootpw {ADMIN_PASSWORD}
directory {workdir}/db
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by * none
"""


@dataclass
class Slapd:
    workdir: Path
    port: int
    tls_port: int
    ca_file: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.tls_port}"

    def start(self) -> None:
        assert self.process is None
        slapd = _binary("slapd")
        log = (self.workdir / "slapd.log").open("ab")
        self.process = subprocess.Popen(
            [
                slapd,
                "-f",
                str(self.workdir / "slapd.conf"),
                "-h",
                # 127.0.0.2: an address the certificate does not name.
                f"ldap://127.0.0.1:{self.port}/ ldaps://127.0.0.1:{self.tls_port}/ "
                f"ldaps://127.0.0.2:{self.tls_port}/",
                # In the foreground, logging nothing but what goes wrong.
                "-d",
                "0",
            ],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = (self.workdir / "slapd.log").read_text(errors="replace")
                self.process = None
                pytest.fail(f"slapd exited at start-up:\n{output[-3000:]}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"slapd did not listen on {self.port} within {START_TIMEOUT}s")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def modify(self, ldif: str) -> None:
        """Apply an LDIF change as the directory's administrator (``ldapmodify``)."""
        done = subprocess.run(
            [
                _binary("ldapmodify"),
                "-x",
                "-H",
                self.url,
                "-D",
                ADMIN_DN,
                "-w",
                ADMIN_PASSWORD,
            ],
            input=ldif.encode(),
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode(errors="replace")

    def set_members(self, group_dn: str, members: list[str]) -> None:
        lines = [f"dn: {group_dn}", "changetype: modify", "replace: member"]
        lines += [f"member: {member}" for member in members]
        self.modify("\n".join(lines) + "\n")


def create_slapd(workdir: Path, port: int, tls_port: int) -> Slapd:
    """Configure and load a new server in ``workdir`` (not started)."""
    slapadd = _binary("slapadd")
    _binary("slapd")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "db").mkdir()
    ca = make_ca()
    cert, key = ca.issue(["localhost", "127.0.0.1"])
    (workdir / "ca.pem").write_bytes(ca.cert_pem)
    (workdir / "server.pem").write_bytes(cert)
    (workdir / "server.key").write_bytes(key)
    (workdir / "server.key").chmod(0o600)
    (workdir / "slapd.conf").write_text(_config(workdir))
    (workdir / "directory.ldif").write_text(directory_ldif())
    done = subprocess.run(
        [slapadd, "-f", str(workdir / "slapd.conf"), "-l", str(workdir / "directory.ldif")],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return Slapd(workdir, port, tls_port, workdir / "ca.pem")


def slapd_server(workdir: Path, port_for: Callable[[], int]) -> Iterator[Slapd]:
    """A started server, stopped afterwards (for a fixture to ``yield from``)."""
    server = create_slapd(workdir, port_for(), port_for())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def ldap_options(slapd: Slapd, **overrides: Any) -> dict[str, Any]:
    """The keys of ``auth.builtin.ldap`` for this server: StartTLS with the test CA, searching as
    the service account, developers mapped to acme/developers; ``overrides`` add or replace."""
    options: dict[str, Any] = {
        "url": slapd.url,
        "starttls": True,
        "cafile": str(slapd.ca_file),
        "binddn": SERVICE_DN,
        "bindpassword": SERVICE_PASSWORD,
        "usersearchbase": PEOPLE,
        "groupsearchbase": GROUPS,
        "groups": {DEVELOPERS: "acme/developers"},
        "timeout": "3s",
    }
    options.update(overrides)
    return options
