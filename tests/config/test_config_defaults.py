"""With no file every key takes its default; an empty section means its defaults too."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.config import Config, load_config

ENV = {"HOME": "/home/someone"}


@pytest.fixture
def config() -> Config:
    return load_config(None, ENV)


def test_version(config: Config) -> None:
    assert config.version == "0.1"


def test_log(config: Config) -> None:
    log = config.log
    assert log.level == "info"
    assert log.formatter == "text"
    assert log.fields == {}
    assert log.accesslog.disabled is False
    assert log.hooks == []
    assert log.reportcaller is False
    assert config.loglevel is None


def test_storage_is_filesystem_under_the_user_data_directory(config: Config) -> None:
    storage = config.storage
    assert storage.driver_name == "filesystem"
    assert storage.filesystem is not None
    assert storage.filesystem.rootdirectory == "/home/someone/.local/share/dockyard"
    assert storage.filesystem.maxthreads == 100
    assert storage.s3 is None
    assert storage.inmemory is None


def test_storage_settings(config: Config) -> None:
    storage = config.storage
    assert storage.delete.enabled is False
    purging = storage.maintenance.uploadpurging
    assert (purging.enabled, purging.age, purging.interval, purging.dryrun) == (
        True,
        168 * 3600.0,
        24 * 3600.0,
        False,
    )
    assert storage.maintenance.readonly.enabled is False
    assert storage.cache.blobdescriptor is None
    assert storage.cache.blobdescriptorsize == 10000
    assert storage.redirect.disable is False
    assert storage.tag.concurrencylimit == 0


def test_http(config: Config) -> None:
    http = config.http
    assert http.addr == ":5000"
    assert http.tcp_address == ("", 5000)
    assert http.net == "tcp"
    assert http.host is None
    assert http.prefix == ""
    assert http.secret is None
    assert http.relativeurls is False
    assert http.draintimeout == 0.0
    assert http.tls is None
    assert http.headers == {"X-Content-Type-Options": ["nosniff"]}
    assert http.debug is None
    assert http.http2.disabled is False
    assert http.h2c.enabled is False
    assert http.workers is None


def test_health(config: Config) -> None:
    health = config.health
    assert health.storagedriver.enabled is False
    assert health.storagedriver.interval == 10.0
    assert health.storagedriver.threshold == 1
    assert (health.file, health.http, health.tcp) == ([], [], [])


def test_database(config: Config) -> None:
    assert config.database.url is None
    assert config.database.maxconnections == 20
    assert config.database_url == "sqlite:////home/someone/.local/share/dockyard/dockyard.db"
    assert config.data_directory == "/home/someone/.local/share/dockyard"


def test_loose_sections_are_empty(config: Config) -> None:
    for name in (
        "auth",
        "redis",
        "middleware",
        "reporting",
        "proxy",
        "validation",
        "compatibility",
        "catalog",
        "policy",
    ):
        assert getattr(config, name) == {}, name


def test_xdg_data_home_wins() -> None:
    config = load_config(None, {"HOME": "/home/someone", "XDG_DATA_HOME": "/data"})
    assert config.data_directory == "/data/dockyard"
    assert config.database_url == "sqlite:////data/dockyard/dockyard.db"


def test_relative_xdg_data_home_is_ignored() -> None:
    config = load_config(None, {"HOME": "/home/someone", "XDG_DATA_HOME": "data"})
    assert config.data_directory == "/home/someone/.local/share/dockyard"


def test_empty_file_is_all_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text("")
    assert load_config(str(path), ENV) == load_config(None, ENV)


def test_empty_sections_are_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(
        "version: 0.1\nlog:\nstorage:\n  delete:\n  maintenance:\n    uploadpurging:\n"
        "http:\n  tls:\n  debug:\nhealth:\n  file:\nauth:\nredis:\n"
    )
    assert load_config(str(path), ENV) == load_config(None, ENV)


def test_filesystem_without_rootdirectory_takes_the_default(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text("storage:\n  filesystem:\n    maxthreads: 50\n")
    config = load_config(str(path), ENV)
    assert config.storage.filesystem is not None
    assert config.storage.filesystem.rootdirectory == "/home/someone/.local/share/dockyard"
    assert config.storage.filesystem.maxthreads == 50


def test_s3_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text("storage:\n  s3:\n    bucket: images\n    region: us-east-1\n")
    config = load_config(str(path), ENV)
    s3 = config.storage.s3
    assert s3 is not None
    assert config.storage.driver_name == "s3"
    assert config.storage.filesystem is None
    assert (s3.bucket, s3.region, s3.regionendpoint) == ("images", "us-east-1", None)
    assert (s3.accesskey, s3.secretkey, s3.keyid, s3.useragent) == (None, None, None, None)
    assert (s3.secure, s3.v4auth, s3.encrypt, s3.skipverify) == (True, True, False, False)
    assert (s3.forcepathstyle, s3.usedualstack, s3.accelerate) == (False, False, False)
    assert s3.chunksize == 10 * 1024 * 1024
    assert s3.multipartcopychunksize == 32 * 1024 * 1024
    assert s3.multipartcopymaxconcurrency == 100
    assert s3.multipartcopythresholdsize == 32 * 1024 * 1024
    assert (s3.dialtimeout, s3.readtimeout) == (5.0, 60.0)
    assert (s3.rootdirectory, s3.storageclass, s3.objectacl, s3.loglevel) == (
        "",
        "STANDARD",
        "private",
        "off",
    )
    # No local blob root: Dockyard's own files go to the data directory.
    assert config.data_directory == "/home/someone/.local/share/dockyard"
    assert config.database_url == "sqlite:////home/someone/.local/share/dockyard/dockyard.db"


def test_tls_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text("http:\n  tls:\n    certificate: /c.pem\n    key: /k.pem\n")
    tls = load_config(str(path), ENV).http.tls
    assert tls is not None
    assert (tls.certificate, tls.key) == ("/c.pem", "/k.pem")
    assert tls.clientcas == []
    assert tls.clientauth == "require-and-verify-client-cert"
    assert tls.minimumtls == "tls1.2"
    assert tls.ciphersuites == []
    assert tls.letsencrypt is None


def test_health_check_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(
        "health:\n  file:\n    - file: /down\n  http:\n    - uri: http://x/\n"
        "  tcp:\n    - addr: redis:6379\n"
    )
    health = load_config(str(path), ENV).health
    assert (health.file[0].file, health.file[0].interval, health.file[0].threshold) == (
        "/down",
        10.0,
        1,
    )
    check = health.http[0]
    assert (check.uri, check.headers, check.statuscode) == ("http://x/", {}, 200)
    assert (check.timeout, check.interval, check.threshold) == (5.0, 10.0, 1)
    tcp = health.tcp[0]
    assert (tcp.addr, tcp.timeout, tcp.interval, tcp.threshold) == ("redis:6379", 5.0, 10.0, 1)


def test_debug_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text("http:\n  debug:\n    addr: localhost:5001\n")
    debug = load_config(str(path), ENV).http.debug
    assert debug is not None
    assert debug.addr == "localhost:5001"
    assert (debug.prometheus.enabled, debug.prometheus.path) == (False, "/metrics")
