"""A bad config is refused with a message naming each offending key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.config import ConfigError, Problem, load_config

ENV = {"HOME": "/home/someone"}


def _refusal(tmp_path: Path, text: str) -> ConfigError:
    path = tmp_path / "config.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), ENV)
    return caught.value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # Unknown keys, at every depth.
        ("bogus: 1\n", "bogus: unknown key"),
        (
            "storage:\n  filesystem:\n    rootdirectry: /srv\n",
            "storage.filesystem.rootdirectry: unknown key",
        ),
        ("http:\n  tls:\n    certificate: /c\n    key: /k\n    x: 1\n", "http.tls.x: unknown key"),
        ("log:\n  accesslog:\n    enabled: true\n", "log.accesslog.enabled: unknown key"),
        ("health:\n  tcp:\n    - addr: a:1\n      port: 2\n", "health.tcp[0].port: unknown key"),
        (
            "storage:\n  s3:\n    bucket: b\n    region: r\n    bukket: c\n",
            "storage.s3.bukket: unknown key",
        ),
        ("database:\n  uri: x\n", "database.uri: unknown key"),
        ("database:\n  maxconnections: 0\n", "database.maxconnections: "),
        # Storage drivers.
        (
            "storage:\n  azure:\n    accountname: a\n",
            "storage.azure: unsupported storage driver"
            " (Dockyard supports filesystem, inmemory, s3)",
        ),
        ("storage: gcs\n", "storage.gcs: unsupported storage driver"),
        ("storage:\n  swift: {}\n  delete:\n    enabled: true\n", "storage.swift: unsupported"),
        (
            "storage:\n  filesystem: {}\n  inmemory:\n",
            "storage: exactly one storage driver may be configured, found filesystem, inmemory",
        ),
        ("storage:\n  s3:\n    region: r\n", "storage.s3.bucket: required"),
        (
            "storage:\n  s3:\n    bucket: b\n",
            "storage.s3: region is required unless regionendpoint",
        ),
        (
            "storage:\n  s3:\n    bucket: b\n    region: r\n    chunksize: 1024\n",
            "storage.s3.chunksize",
        ),
        (
            "storage:\n  s3:\n    bucket: b\n    region: r\n    objectacl: open\n",
            "storage.s3.objectacl",
        ),
        (
            "storage:\n  s3:\n    bucket: b\n    region: r\n    storageclass: COLD\n",
            "storage.s3.storageclass",
        ),
        (
            "storage:\n  s3:\n    bucket: b\n    region: r\n    dialtimeout: 0s\n",
            "storage.s3.dialtimeout",
        ),
        (
            "storage:\n  s3:\n    bucket: b\n    region: r\n    readtimeout: soon\n",
            "storage.s3.readtimeout: invalid duration 'soon'",
        ),
        ("storage:\n  filesystem:\n    maxthreads: 10\n", "storage.filesystem.maxthreads"),
        ("storage:\n  filesystem:\n    rootdirectory: [a]\n", "storage.filesystem.rootdirectory"),
        # Values.
        ("version: 0.2\n", "version: unsupported version '0.2' (expected 0.1)"),
        (
            "log:\n  level: verbose\n",
            "log.level: must be one of 'error', 'warn', 'info' or 'debug'",
        ),
        ("log:\n  formatter: xml\n", "log.formatter: must be one of"),
        ("loglevel: loud\n", "loglevel: must be one of"),
        (
            "storage:\n  delete:\n    enabled: maybe\n",
            "storage.delete.enabled: input should be a valid boolean",
        ),
        ("storage:\n  cache:\n    blobdescriptor: memcached\n", "storage.cache.blobdescriptor"),
        (
            "storage:\n  maintenance:\n    uploadpurging:\n      age: soon\n",
            "storage.maintenance.uploadpurging.age: invalid duration 'soon'",
        ),
        (
            "storage:\n  maintenance:\n    uploadpurging:\n      interval: -1h\n",
            "storage.maintenance.uploadpurging.interval:"
            " invalid duration '-1h': must not be negative",
        ),
        (
            "health:\n  storagedriver:\n    interval: 10 s\n",
            "health.storagedriver.interval: invalid duration",
        ),
        ("health:\n  file:\n    - interval: 1s\n", "health.file[0].file: required"),
        ("http:\n  addr: nonsense\n", "http.addr: invalid address 'nonsense'"),
        ("http:\n  addr: ':99999'\n", "http.addr: invalid address"),
        ("http:\n  addr: '::1:5000'\n", "http.addr: invalid address"),
        ("http:\n  addr: '[fe80::zz]:5000'\n", "http.addr: invalid address"),
        ("http:\n  addr: '300.1.1.1:5000'\n", "http.addr: invalid address"),
        ("http:\n  addr: 'host:http'\n", "http.addr: invalid address"),
        ("http:\n  net: udp\n", "http.net: must be one of 'tcp' or 'unix'"),
        ("http:\n  host: myregistry:5000\n", "http.host: invalid URL"),
        (
            "http:\n  prefix: registry/\n",
            "http.prefix: invalid prefix 'registry/': must start with /",
        ),
        ("http:\n  draintimeout: later\n", "http.draintimeout: invalid duration"),
        ("http:\n  workers: 0\n", "http.workers: input should be greater than or equal to 1"),
        ("http:\n  tls:\n    certificate: /c\n", "http.tls: certificate and key go together"),
        ("http:\n  tls:\n    clientcas: [/ca]\n", "http.tls: certificate and key are required"),
        (
            "http:\n  tls:\n    certificate: /c\n    key: /k\n    minimumtls: ssl3\n",
            "http.tls.minimumtls",
        ),
        ("http:\n  debug:\n    addr: nowhere\n", "http.debug.addr: invalid address"),
        ("http:\n  headers:\n    X-A: {b: c}\n", "http.headers.X-A: input should be a valid list"),
        (
            "auth:\n  htpasswd: {}\n  token: {}\n",
            "auth: exactly one auth provider may be configured",
        ),
        ("redis: [localhost]\n", "redis: input should be a valid dictionary"),
    ],
)
def test_refused(tmp_path: Path, text: str, message: str) -> None:
    assert message in str(_refusal(tmp_path, text))


def test_every_problem_is_reported(tmp_path: Path) -> None:
    error = _refusal(tmp_path, "http:\n  addr: nope\n  workers: 0\nbogus: 1\n")
    assert {problem.path for problem in error.problems} == {"http.addr", "http.workers", "bogus"}
    assert len(str(error).splitlines()) == 3


def test_problem_values(tmp_path: Path) -> None:
    error = _refusal(tmp_path, "storage:\n  filesystem:\n    rootdirectry: /srv\n")
    assert error.problems == (Problem("storage.filesystem.rootdirectry", "unknown key"),)
    assert str(error) == "storage.filesystem.rootdirectry: unknown key"


def test_secrets_are_not_echoed(tmp_path: Path) -> None:
    error = _refusal(tmp_path, "http:\n  secret: {hunter2: x}\n")
    assert "http.secret" in str(error)
    assert "hunter2" not in str(error)


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.yml"
    with pytest.raises(ConfigError, match=r"absent\.yml: no such file"):
        load_config(str(missing), ENV)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=str(tmp_path)):
        load_config(str(tmp_path), ENV)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("http:\n  addr: [\n", "invalid YAML at line 3, column 1"),
        ("http:\n  addr: :5000\n  addr: :5001\n", "line 3, column 3: found duplicate key 'addr'"),
        ("- storage\n", "the top level must be a mapping"),
        ("just text\n", "the top level must be a mapping"),
    ],
)
def test_not_a_config_file(tmp_path: Path, text: str, message: str) -> None:
    error = _refusal(tmp_path, text)
    assert str(error).startswith(str(tmp_path / "config.yml") + ": ")
    assert message in str(error)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_bytes(b"version: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(str(path), ENV)
