"""``REGISTRY_*`` environment variables override keys by their upper-cased path."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from dockyard.config import Config, ConfigError, load_config, read_config

BASE = """\
version: 0.1
log:
  fields:
    service: registry
    my_field: one
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  maintenance:
    uploadpurging:
      enabled: true
http:
  addr: :5000
"""


def _load(tmp_path: Path, environ: Mapping[str, str], text: str = BASE) -> Config:
    path = tmp_path / "config.yml"
    path.write_text(text)
    return load_config(str(path), {"HOME": "/home/someone", **environ})


def test_scalar_overrides(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        {
            "REGISTRY_HTTP_ADDR": "0.0.0.0:5001",
            "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": "/srv/registry",
            "REGISTRY_STORAGE_DELETE_ENABLED": "true",
            "REGISTRY_HTTP_WORKERS": "3",
            "REGISTRY_LOG_LEVEL": "debug",
            "REGISTRY_DATABASE_MAXCONNECTIONS": "6",
        },
    )
    assert config.http.addr == "0.0.0.0:5001"
    assert config.storage.filesystem is not None
    assert config.storage.filesystem.rootdirectory == "/srv/registry"
    assert config.database_url == "sqlite:////srv/registry/dockyard.db"
    assert config.storage.delete.enabled is True
    assert config.http.workers == 3
    assert config.log.level == "debug"
    assert config.database.maxconnections == 6


def test_nested_section_key(tmp_path: Path) -> None:
    config = _load(tmp_path, {"REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_ENABLED": "false"})
    assert config.storage.maintenance.uploadpurging.enabled is False


def test_durations(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        {
            "REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_AGE": "1h30m",
            "REGISTRY_HTTP_DRAINTIMEOUT": "30",
        },
    )
    assert config.storage.maintenance.uploadpurging.age == 5400.0
    assert config.http.draintimeout == 30.0


def test_keys_missing_from_the_file_are_created(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        {"REGISTRY_AUTH_HTPASSWD_REALM": "basic", "REGISTRY_AUTH_HTPASSWD_PATH": "/etc/htpasswd"},
        text="",
    )
    assert config.auth == {"htpasswd": {"realm": "basic", "path": "/etc/htpasswd"}}


def test_whole_section_as_yaml(tmp_path: Path) -> None:
    config = _load(tmp_path, {"REGISTRY_HTTP_HEADERS": "{X-Frame-Options: [DENY]}"})
    assert config.http.headers == {"X-Frame-Options": ["DENY"]}


def test_one_header(tmp_path: Path) -> None:
    text = BASE + "  headers:\n    X-Content-Type-Options: [nosniff]\n"
    config = _load(tmp_path, {"REGISTRY_HTTP_HEADERS_X-FRAME-OPTIONS": "[DENY]"}, text=text)
    assert config.http.headers == {
        "X-Content-Type-Options": ["nosniff"],
        "x-frame-options": ["DENY"],
    }


def test_existing_free_key_with_an_underscore(tmp_path: Path) -> None:
    config = _load(tmp_path, {"REGISTRY_LOG_FIELDS_MY_FIELD": "two"})
    assert config.log.fields == {"service": "registry", "my_field": "two"}


def test_list_elements_by_index(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        {
            "REGISTRY_HEALTH_FILE_0_FILE": "/down",
            "REGISTRY_HEALTH_FILE_0_INTERVAL": "5s",
            "REGISTRY_HTTP_TLS_CERTIFICATE": "/c.pem",
            "REGISTRY_HTTP_TLS_KEY": "/k.pem",
            "REGISTRY_HTTP_TLS_CLIENTCAS_0": "/ca1.pem",
            "REGISTRY_HTTP_TLS_CLIENTCAS_1": "/ca2.pem",
        },
    )
    assert [(check.file, check.interval) for check in config.health.file] == [("/down", 5.0)]
    assert config.http.tls is not None
    assert config.http.tls.clientcas == ["/ca1.pem", "/ca2.pem"]


def test_switch_driver(tmp_path: Path) -> None:
    # Lexical order applies REGISTRY_STORAGE first, replacing the file's driver.
    config = _load(
        tmp_path,
        {
            "REGISTRY_STORAGE_S3_BUCKET": "images",
            "REGISTRY_STORAGE_S3_REGIONENDPOINT": "http://127.0.0.1:9000",
            "REGISTRY_STORAGE": "s3",
            "REGISTRY_STORAGE_DELETE_ENABLED": "true",
        },
    )
    assert config.storage.driver_name == "s3"
    assert config.storage.s3 is not None
    assert config.storage.s3.bucket == "images"
    assert config.storage.s3.regionendpoint == "http://127.0.0.1:9000"
    assert config.storage.delete.enabled is True


def test_string_keys_keep_text_yaml_would_mangle(tmp_path: Path) -> None:
    config = _load(
        tmp_path, {"REGISTRY_HTTP_SECRET": "#s3cret: {x", "REGISTRY_LOG_FIELDS_SERVICE": "a: b"}
    )
    assert config.http.secret == "#s3cret: {x"
    assert config.log.fields["service"] == {"a": "b"}  # a free key takes YAML, as Distribution


def test_empty_value_is_null(tmp_path: Path) -> None:
    config = _load(tmp_path, {"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": ""})
    assert config.storage.filesystem is not None
    assert config.storage.filesystem.rootdirectory == "/home/someone/.local/share/dockyard"


def test_env_override_without_a_file() -> None:
    config = load_config(None, {"HOME": "/h", "REGISTRY_HTTP_ADDR": "127.0.0.1:6000"})
    assert config.http.tcp_address == ("127.0.0.1", 6000)


def test_unrelated_variables_are_ignored_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(BASE)
    loaded = read_config(
        str(path),
        {
            "HOME": "/home/someone",
            # What Kubernetes sets for a service named "registry", and a typo.
            "REGISTRY_PORT": "tcp://10.0.0.1:5000",
            "REGISTRY_SERVICE_HOST": "10.0.0.1",
            "REGISTRY_HTTP_ADR": "0.0.0.0:1",
            "REGISTRY_HTTP_ADDR_PORT": "1",
            "REGISTRY__HTTP": "x",
            "REGISTRYHTTP_ADDR": "x",
            "HTTP_ADDR": "x",
        },
    )
    assert loaded.config == _load(tmp_path, {})
    assert loaded.warnings == (
        "ignoring REGISTRY_HTTP_ADDR_PORT: no configuration key matches it",
        "ignoring REGISTRY_HTTP_ADR: no configuration key matches it",
        "ignoring REGISTRY_PORT: no configuration key matches it",
        "ignoring REGISTRY_SERVICE_HOST: no configuration key matches it",
        "ignoring REGISTRY__HTTP: not a configuration key path",
    )


def test_warnings_are_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _load(tmp_path, {"REGISTRY_PORT": "tcp://10.0.0.1:5000"})
    assert "ignoring REGISTRY_PORT" in caplog.text


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"REGISTRY_HTTP_ADDR": "bad"},
            "http.addr: invalid address 'bad' (expected HOST:PORT, e.g. :5000 or 127.0.0.1:5000)"
            " (set by REGISTRY_HTTP_ADDR)",
        ),
        (
            {"REGISTRY_STORAGE_DELETE_ENABLED": "maybe"},
            "storage.delete.enabled: input should be a valid boolean, unable to interpret input"
            " (got 'maybe') (set by REGISTRY_STORAGE_DELETE_ENABLED)",
        ),
        (
            {"REGISTRY_STORAGE_AZURE_ACCOUNTNAME": "a"},
            "storage.azure: unsupported storage driver (Dockyard supports filesystem, inmemory, s3)"
            " (set by REGISTRY_STORAGE_AZURE_ACCOUNTNAME)",
        ),
        (
            {"REGISTRY_STORAGE_S3_BUCKET": "b", "REGISTRY_STORAGE_S3_REGION": "r"},
            "storage: exactly one storage driver may be configured, found filesystem, s3"
            " (set by REGISTRY_STORAGE_S3_BUCKET, REGISTRY_STORAGE_S3_REGION)",
        ),
        (
            {"REGISTRY_HTTP_TLS": "{certificate: /c}"},
            "http.tls: certificate and key go together: set both or neither"
            " (set by REGISTRY_HTTP_TLS)",
        ),
        (
            {"REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_AGE": "a week"},
            "storage.maintenance.uploadpurging.age: invalid duration 'a week'",
        ),
        ({"REGISTRY_HTTP_WORKERS": "[1"}, "REGISTRY_HTTP_WORKERS: invalid YAML value"),
    ],
)
def test_override_makes_it_bad(tmp_path: Path, environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, environ)
    assert message in str(caught.value)


def test_override_makes_it_good(tmp_path: Path) -> None:
    bad = BASE.replace("addr: :5000", "addr: nowhere")
    with pytest.raises(ConfigError, match=r"http\.addr"):
        _load(tmp_path, {}, text=bad)
    config = _load(tmp_path, {"REGISTRY_HTTP_ADDR": "127.0.0.1:5000"}, text=bad)
    assert config.http.addr == "127.0.0.1:5000"
