"""The ``dockyard`` command: help, version, check-config; serve's start-up checks and the
Granian settings it derives from the config."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from granian import Granian
from sqlalchemy.engine import make_url

from config.test_config_stock import STOCK
from dockyard import __version__
from dockyard.cli import main
from dockyard.config import Config, ConfigError, load_config
from dockyard.server import APP_TARGET, client_ca_bundle, granian_options, preflight


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.yml"
    path.write_text(text)
    return str(path)


def _run(*args: str, env: Mapping[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=dict(env or {}), prog_name="dockyard")


# Help and version ------------------------------------------------------------------------------
def test_help() -> None:
    result = _run("--help")
    assert result.exit_code == 0
    assert "Usage: dockyard" in result.stdout
    assert "check-config" in result.stdout
    assert "serve" in result.stdout


@pytest.mark.parametrize("command", ["check-config", "serve"])
def test_command_help(command: str) -> None:
    result = _run(command, "--help")
    assert result.exit_code == 0
    assert f"Usage: dockyard {command}" in result.stdout


def test_version() -> None:
    result = _run("--version")
    assert result.exit_code == 0
    assert result.stdout == f"dockyard {__version__}\n"


def test_version_as_a_module() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dockyard", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, f"dockyard {__version__}\n")


def test_unknown_command() -> None:
    result = _run("launch")
    assert result.exit_code == 2
    assert "No such command" in result.stderr


# check-config ----------------------------------------------------------------------------------
def test_check_config_stock(tmp_path: Path) -> None:
    result = _run("check-config", _write(tmp_path, STOCK))
    assert (result.exit_code, result.stdout, result.stderr) == (0, "ok\n", "")


def test_check_config_minimal(tmp_path: Path) -> None:
    result = _run("check-config", _write(tmp_path, "version: 0.1\n"))
    assert (result.exit_code, result.stdout) == (0, "ok\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            STOCK.replace("rootdirectory:", "rootdirectry:"),
            "storage.filesystem.rootdirectry: unknown key\n",
        ),
        (
            STOCK.replace("filesystem:", "azure:"),
            "storage.azure: unsupported storage driver (Dockyard supports filesystem, inmemory,"
            " s3)\n",
        ),
        (
            STOCK.replace("interval: 10s", "interval: ten seconds"),
            "health.storagedriver.interval: invalid duration 'ten seconds' (expected e.g. 10s,"
            " 1h30m, 500ms or a number of seconds)\n",
        ),
        ("http: [\n", "invalid YAML at line 2"),
    ],
)
def test_check_config_refuses(tmp_path: Path, text: str, message: str) -> None:
    result = _run("check-config", _write(tmp_path, text))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert message in result.stderr


def test_check_config_missing_file(tmp_path: Path) -> None:
    result = _run("check-config", str(tmp_path / "absent.yml"))
    assert result.exit_code == 2
    assert result.stderr == f"{tmp_path / 'absent.yml'}: no such file\n"


def test_check_config_env_override_makes_it_bad(tmp_path: Path) -> None:
    path = _write(tmp_path, STOCK)
    result = _run("check-config", path, env={"REGISTRY_HTTP_ADDR": "nowhere"})
    assert result.exit_code == 2
    assert result.stderr.startswith("http.addr: invalid address 'nowhere'")
    assert "(set by REGISTRY_HTTP_ADDR)" in result.stderr


def test_check_config_env_override_makes_it_good(tmp_path: Path) -> None:
    path = _write(tmp_path, STOCK.replace("addr: :5000", "addr: nowhere"))
    assert _run("check-config", path).exit_code == 2
    result = _run("check-config", path, env={"REGISTRY_HTTP_ADDR": "127.0.0.1:5000"})
    assert (result.exit_code, result.stdout) == (0, "ok\n")


def _database_config(tmp_path: Path, url: str) -> str:
    return _write(tmp_path, f"version: 0.1\ndatabase:\n  url: {url}\n")


def test_check_config_asks_the_database(tmp_path: Path) -> None:
    from metadata.test_postgres import SERVER, fresh_database

    with fresh_database() as url:
        result = _run("check-config", _database_config(tmp_path, url))
        assert (result.exit_code, result.stdout, result.stderr) == (0, "ok\n", "")
    nobody = make_url(SERVER).set(username="nobody").render_as_string(hide_password=False)
    result = _run("check-config", _database_config(tmp_path, nobody))
    assert result.exit_code == 2
    assert result.stderr == (
        'database.url: InvalidAuthorizationSpecificationError: role "nobody" does not exist\n'
    )
    absent = make_url(SERVER).set(database="dockyard_absent").render_as_string()
    result = _run("check-config", _database_config(tmp_path, absent))
    assert result.exit_code == 2
    assert 'InvalidCatalogNameError: database "dockyard_absent" does not exist' in result.stderr
    # serve names the key too, and does not start.
    result = _run("serve", _database_config(tmp_path, nobody))
    assert result.exit_code == 1
    assert "database.url: cannot bring the schema up to date: " in result.stderr
    assert 'role "nobody" does not exist' in result.stderr


def test_check_config_warns_of_a_database_out_of_reach(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        url = f"postgresql://postgres@127.0.0.1:{probe.getsockname()[1]}/dockyard"
        result = _run("check-config", _database_config(tmp_path, url))
    assert (result.exit_code, result.stdout) == (0, "ok\n")
    assert result.stderr.startswith("warning: database.url: unavailable (ConnectionRefusedError")
    assert result.stderr.endswith("): not checked\n")


def test_check_config_warns_of_ignored_variables(tmp_path: Path) -> None:
    result = _run("check-config", _write(tmp_path, STOCK), env={"REGISTRY_PORT": "tcp://x:1"})
    assert (result.exit_code, result.stdout) == (0, "ok\n")
    assert result.stderr == "warning: ignoring REGISTRY_PORT: no configuration key matches it\n"


@pytest.mark.parametrize(
    ("tls", "message"),
    [
        (
            "    letsencrypt:\n      cachefile: /c\n      email: a@example.com\n",
            "http.tls.letsencrypt: not supported; set http.tls.certificate and http.tls.key",
        ),
        (
            "    certificate: /c\n    key: /k\n    minimumtls: tls1.0\n",
            "http.tls.minimumtls: tls1.0 is not supported; use tls1.2",
        ),
        (
            "    certificate: /c\n    key: /k\n    clientcas: [/ca]\n"
            "    clientauth: verify-client-cert-if-given\n",
            "http.tls.clientauth: verify-client-cert-if-given is not supported",
        ),
    ],
)
def test_check_config_refuses_what_serve_cannot_honour(
    tmp_path: Path, tls: str, message: str
) -> None:
    result = _run("check-config", _write(tmp_path, f"http:\n  tls:\n{tls}"))
    assert result.exit_code == 2
    assert message in result.stderr


def test_check_config_warns_of_ignored_settings(tmp_path: Path) -> None:
    text = (
        "http:\n  tls:\n    certificate: /c\n    key: /k\n"
        "    ciphersuites: [TLS_AES_128_GCM_SHA256]\n"
    )
    result = _run("check-config", _write(tmp_path, text))
    assert (result.exit_code, result.stdout) == (0, "ok\n")
    assert "warning: http.tls.ciphersuites: ignored" in result.stderr


# serve: failing fast ---------------------------------------------------------------------------
def _serve_process(config_path: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    return subprocess.run(
        [sys.executable, "-m", "dockyard", "serve", config_path],
        capture_output=True,
        text=True,
        timeout=60,
        env={**environ, **env},
        check=False,
    )


def test_serve_refuses_a_bad_config(tmp_path: Path) -> None:
    path = _write(tmp_path, STOCK.replace("rootdirectory:", "rootdirectry:"))
    done = _serve_process(path, {})
    assert done.returncode == 2
    assert done.stderr == "storage.filesystem.rootdirectry: unknown key\n"


def test_serve_reports_a_taken_address(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        root = tmp_path / "data"
        text = (
            f"storage:\n  filesystem:\n    rootdirectory: {root}\nhttp:\n  addr: 127.0.0.1:{port}\n"
        )
        done = _serve_process(_write(tmp_path, text), {})
    assert done.returncode == 1
    assert f"dockyard: http.addr: cannot listen on 127.0.0.1:{port}: Address already in use" in (
        done.stderr
    )
    # Prepared before listening: the data directory and the migrated database.
    assert (root / "dockyard.db").is_file()


# serve: Granian settings -----------------------------------------------------------------------
def _config(tmp_path: Path, text: str) -> Config:
    return load_config(_write(tmp_path, text), {"HOME": str(tmp_path)})


def test_granian_defaults(tmp_path: Path) -> None:
    options = granian_options(_config(tmp_path, STOCK))
    assert options["target"] == APP_TARGET == "dockyard.app:from_environment"
    assert options["factory"] is True
    assert str(options["interface"]) == "asgi"
    assert options["workers"] == (os.cpu_count() or 1)
    assert options["address"] in ("::", "0.0.0.0")  # every interface
    assert options["port"] == 5000
    assert str(options["http"]) == "auto"
    assert options["http1_settings"].keep_alive is True
    assert options["respawn_failed_workers"] is True
    assert options["workers_kill_timeout"] is None
    assert options["log_level"].value == "info"
    # Dockyard writes the access log itself; Granian's own would make two lines a request.
    assert options["log_access"] is False
    assert options["log_dictconfig"]["loggers"]["dockyard.access"]["level"] == "INFO"
    assert "ssl_cert" not in options
    # Every option is one Granian takes.
    Granian(**options)


@pytest.mark.parametrize(
    ("addr", "address", "port"),
    [
        ("0.0.0.0:5000", ("0.0.0.0",), 5000),
        ("127.0.0.1:5001", ("127.0.0.1",), 5001),
        ("'[::1]:5002'", ("::1",), 5002),
        ("localhost:5003", ("127.0.0.1", "::1"), 5003),
    ],
)
def test_granian_addresses(tmp_path: Path, addr: str, address: tuple[str, ...], port: int) -> None:
    options = granian_options(_config(tmp_path, f"http:\n  addr: {addr}\n"))
    assert options["address"] in address
    assert options["port"] == port


def test_granian_unix_socket(tmp_path: Path) -> None:
    options = granian_options(_config(tmp_path, f"http:\n  net: unix\n  addr: {tmp_path}/r.sock\n"))
    assert options["uds"] == tmp_path / "r.sock"
    assert "address" not in options


def test_granian_tuning(tmp_path: Path) -> None:
    text = (
        "log:\n  level: debug\n  accesslog:\n    disabled: true\n"
        "http:\n  workers: 3\n  draintimeout: 2500ms\n  http2:\n    disabled: true\n"
    )
    options = granian_options(_config(tmp_path, text))
    assert options["workers"] == 3
    assert options["workers_kill_timeout"] == 3
    assert str(options["http"]) == "1"
    assert options["log_level"].value == "debug"
    assert options["log_access"] is False
    assert options["log_dictconfig"]["loggers"]["dockyard.access"]["level"] == "CRITICAL"
    assert options["log_dictconfig"]["root"]["level"] == "DEBUG"


def test_granian_tls(tmp_path: Path) -> None:
    text = "http:\n  tls:\n    certificate: /c.pem\n    key: /k.pem\n    minimumtls: tls1.3\n"
    options = granian_options(_config(tmp_path, text), client_ca=Path("/ca.pem"))
    assert (options["ssl_cert"], options["ssl_key"]) == (Path("/c.pem"), Path("/k.pem"))
    assert str(options["ssl_protocol_min"]) == "tls1.3"
    assert options["ssl_ca"] == Path("/ca.pem")
    assert options["ssl_client_verify"] is True


def test_client_ca_bundle(tmp_path: Path) -> None:
    first, second = tmp_path / "a.pem", tmp_path / "b.pem"
    first.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    second.write_text("-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----")
    text = f"http:\n  tls:\n    certificate: /c\n    key: /k\n    clientcas: [{first}]\n"
    one = _config(tmp_path, text).http.tls
    assert client_ca_bundle(one, tmp_path) == first
    both = _config(tmp_path, text.replace(f"[{first}]", f"[{first}, {second}]")).http.tls
    bundle = client_ca_bundle(both, tmp_path / "..")
    assert bundle is not None
    assert bundle.read_text().count("BEGIN CERTIFICATE") == 2
    assert client_ca_bundle(None, tmp_path) is None


def test_client_ca_missing(tmp_path: Path) -> None:
    text = (
        "http:\n  tls:\n    certificate: /c\n    key: /k\n    clientcas: [/no/a.pem, /no/b.pem]\n"
    )
    with pytest.raises(ConfigError, match=r"http\.tls\.clientcas: /no/a\.pem: No such file"):
        client_ca_bundle(_config(tmp_path, text).http.tls, tmp_path)


def test_preflight_passes_a_plain_config(tmp_path: Path) -> None:
    assert preflight(_config(tmp_path, STOCK)) == []


def test_migrate_creates_the_schema_and_check_reports_it(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp_path / 'data'}\n"
        f"database:\n  url: sqlite:///{tmp_path / 'meta.db'}\n"
    )
    before = subprocess.run(
        [sys.executable, "-m", "dockyard", "migrate", "--check", str(config)],
        capture_output=True,
        text=True,
    )
    assert before.returncode == 1, before.stderr
    assert "schema at nothing" in before.stdout
    done = subprocess.run(
        [sys.executable, "-m", "dockyard", "migrate", str(config)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "migrated nothing ->" in done.stdout
    after = subprocess.run(
        [sys.executable, "-m", "dockyard", "migrate", "--check", str(config)],
        capture_output=True,
        text=True,
    )
    assert after.returncode == 0, after.stderr
    assert (tmp_path / "meta.db").exists()


def test_check_config_refuses_a_bad_auth_section(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text("version: 0.1\nauth:\n  silly:\n    realm: x\n    service: y\n")
    done = subprocess.run(
        [sys.executable, "-m", "dockyard", "check-config", str(config)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "auth.silly" in done.stderr


@pytest.mark.parametrize(
    ("redis", "message"),
    [
        ("  addrs: [a:1, b:2]\n  db: 3\n", "redis.db: a Redis Cluster"),
        ("  addr: a:1\n  sentinelpassword: x\n", "redis.sentinelpassword: only with"),
        ("  addr: a:1\n  pool:\n    maxactiv: 3\n", "redis.pool.maxactiv: unknown key"),
    ],
)
def test_check_config_refuses_a_bad_redis_section(tmp_path: Path, redis: str, message: str) -> None:
    result = _run("check-config", "--offline", _write(tmp_path, f"redis:\n{redis}"))
    assert result.exit_code == 2
    assert message in result.stderr


@pytest.mark.parametrize(
    "section",
    [
        "redis:\n  addrs: [s1:26379, s2:26379]\n  mastername: primary\n",
        "redis:\n  addrs: [n1:6379, n2:6379, n3:6379]\n",
    ],
)
def test_check_config_takes_sentinel_and_cluster_sections(tmp_path: Path, section: str) -> None:
    result = _run("check-config", "--offline", _write(tmp_path, section))
    assert result.exit_code == 0, result.stderr
