"""Run the registry: Granian serving the ASGI app, every worker loading the same config.

The parent process validates the config, creates the data directory and migrates the
database once; then Granian forks the workers, each of which builds the app through
``dockyard.app:from_environment`` from the config file named by ``DOCKYARD_CONFIG`` (with the
same ``REGISTRY_*`` overrides, which the workers inherit).
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import ipaddress
import logging
import math
import os
import secrets
import signal
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dockyard.config import Config, ConfigError, Problem, TlsConfig, parse_tcp_address
from dockyard.observability.logging import configure_logging
from dockyard.observability.reporting import reporting_warnings
from dockyard.observability.tracing import tracing_problems

__all__ = [
    "APP_TARGET",
    "CONFIG_ENV",
    "SCHEMA_PENDING_ENV",
    "ServeError",
    "client_ca_bundle",
    "granian_options",
    "preflight",
    "prepared",
    "serve",
]

APP_TARGET = "dockyard.app:from_environment"
CONFIG_ENV = "DOCKYARD_CONFIG"
SECRET_ENV = "REGISTRY_HTTP_SECRET"
SCHEMA_PENDING_ENV = "DOCKYARD_SCHEMA_PENDING"
"""Set to ``1`` for the workers when the database did not answer at start-up (they wait for
it: see ``dockyard.health.schema``)."""

log = logging.getLogger("dockyard.server")


class ServeError(Exception):
    """The server cannot start: the address is taken, a certificate does not load..."""


def preflight(config: Config) -> list[str]:
    """Refuse, with :class:`ConfigError`, the settings this server cannot honour; return
    warnings for those it ignores. ``check-config`` runs this too."""
    problems: list[Problem] = []
    warnings: list[str] = []
    tls = config.http.tls
    if tls is not None:
        if tls.certificate is None:
            problems.append(
                Problem(
                    "http.tls.letsencrypt",
                    "not supported; set http.tls.certificate and http.tls.key",
                )
            )
        if tls.minimumtls in ("tls1.0", "tls1.1"):
            problems.append(
                Problem("http.tls.minimumtls", f"{tls.minimumtls} is not supported; use tls1.2")
            )
        if tls.clientcas and tls.clientauth != "require-and-verify-client-cert":
            problems.append(
                Problem(
                    "http.tls.clientauth",
                    f"{tls.clientauth} is not supported; use require-and-verify-client-cert",
                )
            )
        if tls.ciphersuites:
            warnings.append(
                "http.tls.ciphersuites: ignored; the TLS library offers modern AEAD suites only"
            )
    problems.extend(_auth_problems(config))
    problems.extend(_middleware_problems(config))
    problems.extend(_redis_problems(config))
    try:
        warnings.extend(reporting_warnings(config))
    except ConfigError as exc:
        problems.extend(exc.problems)
    problems.extend(tracing_problems(config, os.environ))
    if problems:
        raise ConfigError(problems)
    return warnings


def _middleware_problems(config: Config) -> list[Problem]:
    from dockyard.storage.redirect import StorageMiddlewareError, validate

    try:
        validate(config.middleware.get("storage"))
    except StorageMiddlewareError as exc:
        return [Problem(exc.path, exc.reason)]
    return [
        Problem(f"middleware.{section}", "not supported (only middleware.storage)")
        for section in sorted(config.middleware)
        if section != "storage"
    ]


def _redis_problems(config: Config) -> list[Problem]:
    from dockyard.cache.factory import RedisConfigError, check_section

    try:
        check_section(config.redis or None)
    except RedisConfigError as exc:
        return [Problem(exc.path, exc.reason)]
    return []


def _auth_problems(config: Config) -> list[Problem]:
    """Build the access controller once here, so a bad auth section is refused up front
    (and a missing htpasswd file is created once, not by every worker)."""
    from dockyard.auth.factory import access_controller
    from dockyard.auth.options import AuthConfigError

    try:
        access_controller(config.auth)
    except AuthConfigError as exc:
        return [Problem(exc.path, exc.reason)]
    return []


def serve(config: Config, config_path: str | None) -> None:
    """Prepare, then run Granian until it is told to stop (SIGINT or SIGTERM)."""
    from granian import Granian

    with prepared(config, config_path) as options:
        try:
            server = Granian(**options)
        except OSError as exc:  # ssl.SSLError included
            raise ServeError(f"http.tls: cannot load the certificate and key: {exc}") from None
        hold_stop_signals_across_forks()
        server.serve()


@contextlib.contextmanager
def prepared(config: Config, config_path: str | None) -> Iterator[dict[str, Any]]:
    """Everything ``serve`` does before Granian forks the workers (which inherit whatever it
    imports): checks, the data directory, migrations, the workers' environment; Granian's
    options, valid while the context lasts (they may name files in a scratch directory)."""
    configure_logging(config.log)
    for warning in preflight(config):
        log.warning("%s", warning)
    _prepare_data_directory(config)
    _migrate(config)
    _check_storage(config)

    os.environ[CONFIG_ENV] = os.path.abspath(config_path) if config_path else ""
    if config.http.secret is None:
        # Each worker would otherwise make up its own; state signed by one must verify in all.
        os.environ[SECRET_ENV] = secrets.token_hex(32)
    with tempfile.TemporaryDirectory(prefix="dockyard-") as scratch:
        _share_metrics(config, Path(scratch))
        options = granian_options(
            config, client_ca=client_ca_bundle(config.http.tls, Path(scratch))
        )
        _check_listen(options)
        _check_debug_listen(config)
        # The app's modules, loaded once here, are shared by every worker's pages (copy on
        # write) instead of each worker loading its own copy: about 7 MiB less per worker.
        importlib.import_module(APP_TARGET.partition(":")[0])
        # Out of the workers' garbage collections, which write to every object they visit
        # and so would copy each page of what is shared (botocore's parsed S3 model: about
        # 12 MiB per worker).
        gc.freeze()
        yield options


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def hold_stop_signals_across_forks() -> None:
    """Let a stop signal that reaches a freshly forked worker before Granian installs the
    worker's own handlers stop it, rather than be lost.

    Granian forks its workers after installing its parent's handlers, which only set a flag on
    the parent's server object. A worker inherits them, and a stop that reached it while it was
    still loading the app (Granian's shutdown, right after a start or a respawn) set that flag
    in the worker's copy: the worker went on to serve, and the parent waited for it forever.
    Resetting the handlers in the child is not enough on its own: a child not yet scheduled
    when the stop comes meets the signal before its first line of Python, where the inherited
    handler (or Python's clearing of pending signals after a fork) swallows it. So SIGTERM and
    SIGINT are blocked across the fork, and the child unblocks them only once it has restored
    the default action: a stop sent in between waits in the kernel, then ends the worker."""

    def block() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)

    def unblock() -> None:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    def restore_defaults() -> None:
        for number in STOP_SIGNALS:
            signal.signal(number, signal.SIG_DFL)
        unblock()

    os.register_at_fork(before=block, after_in_parent=unblock, after_in_child=restore_defaults)


def _share_metrics(config: Config, scratch: Path) -> None:
    """Workers write their metrics to files in a directory of this run, so that any of them
    can report the sum (prometheus-client's multiprocess mode). Set before the workers start,
    and before anything imports prometheus-client, which reads it once."""
    debug = config.http.debug
    if debug is None or not debug.prometheus.enabled:
        return
    from dockyard.observability import MULTIPROC_ENV

    directory = scratch / "metrics"
    directory.mkdir()
    os.environ[MULTIPROC_ENV] = str(directory)


def _check_debug_listen(config: Config) -> None:
    """The debug server's address must be free too: every worker binds it (SO_REUSEPORT)."""
    debug = config.http.debug
    if debug is None:
        return
    host, port = parse_tcp_address(debug.addr)
    _check_listen({"address": _bind_host(host), "port": port}, key="http.debug.addr")


def _prepare_data_directory(config: Config) -> None:
    if config.storage.filesystem is not None or not config.database.url:
        try:
            os.makedirs(config.data_directory, exist_ok=True)
        except OSError as exc:
            raise ServeError(f"cannot create {config.data_directory}: {exc.strerror}") from None


def _migrate(config: Config) -> None:
    """Bring the schema up to date (in a child process: see ``forked_upgrade``). A database
    out of reach does not stop the start: the workers answer 503 until it answers and they
    have migrated it (a replica restarted during a database outage comes back with it,
    without another restart)."""
    from dockyard.metadata.forked_upgrade import UpgradeDied, upgrade_in_child

    os.environ.pop(SCHEMA_PENDING_ENV, None)
    try:
        outcome = upgrade_in_child(config.database_url)
    except UpgradeDied:
        raise ServeError("database.url: the schema upgrade's process died") from None
    if outcome is None:
        return
    unavailable, reason = outcome
    if unavailable:
        log.warning("database.url: unavailable (%s); answering 503 until it answers", reason)
        os.environ[SCHEMA_PENDING_ENV] = "1"
        return
    raise ServeError(f"database.url: cannot bring the schema up to date: {reason}")


def _check_storage(config: Config) -> None:
    """Refuse to start on a bucket or credentials the store refuses, naming the key; start
    on a store out of reach (blob requests answer 503 until it answers)."""
    from dockyard.store_checks import probe_storage

    problem, unavailable = probe_storage(config)
    if problem is not None:
        raise ServeError(str(problem))
    if unavailable is not None:
        log.warning("%s; answering 503 to blob requests until it answers", unavailable)


def _check_listen(options: dict[str, Any], key: str = "http.addr") -> None:
    """Fail with a plain message, rather than Granian's backtrace, when the address is taken."""
    if "uds" in options:
        return
    address, port = options["address"], options["port"]
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError as exc:
            where = f"[{address}]:{port}" if family == socket.AF_INET6 else f"{address}:{port}"
            raise ServeError(f"{key}: cannot listen on {where}: {exc.strerror}") from None


def granian_options(config: Config, *, client_ca: Path | None = None) -> dict[str, Any]:
    """Keyword arguments for :class:`granian.Granian` serving ``config``.

    Request bodies stream through the ASGI ``receive`` channel with no size limit, so blob
    uploads of any size pass; backpressure caps the requests in flight per worker (Granian's
    default: the listen backlog divided among the workers); connections are kept alive.
    """
    from granian.constants import HTTPModes, Interfaces, SSLProtocols
    from granian.http import HTTP1Settings, HTTP2Settings
    from granian.log import LogLevels

    from dockyard.observability.logging import logging_config

    http = config.http
    options: dict[str, Any] = {
        "target": APP_TARGET,
        "factory": True,
        "interface": Interfaces.ASGI,
        "workers": http.workers or os.cpu_count() or 1,
        "http": HTTPModes.http1 if http.http2.disabled else HTTPModes.auto,
        "websockets": False,
        "backlog": 2048,
        "http1_settings": HTTP1Settings(header_read_timeout=30_000, keep_alive=True),
        # Flow-control windows sized from the measured bandwidth-delay product: large blob
        # transfers over HTTP/2 are not held back by the fixed 1 MiB default.
        "http2_settings": HTTP2Settings(adaptive_window=True),
        "log_level": LogLevels(config.log.level),
        # log.level, log.formatter and log.fields, in the parent and every worker.
        "log_dictconfig": logging_config(config.log),
        # Dockyard writes its own access log (dockyard.observability.accesslog): never two.
        "log_access": False,
        # A crashed worker is replaced; Granian still exits on a crash loop at start-up.
        "respawn_failed_workers": True,
        # 0 (the default): wait for every in-flight request, uploads included.
        "workers_kill_timeout": math.ceil(http.draintimeout) or None,
    }
    if http.net == "unix":
        options["uds"] = Path(http.addr)
    else:
        host, port = http.tcp_address
        options["address"] = _bind_host(host)
        options["port"] = port
    tls = http.tls
    if tls is not None and tls.certificate is not None and tls.key is not None:
        options["ssl_cert"] = Path(tls.certificate)
        options["ssl_key"] = Path(tls.key)
        options["ssl_protocol_min"] = SSLProtocols(tls.minimumtls)
        if client_ca is not None:
            options["ssl_ca"] = client_ca
            options["ssl_client_verify"] = True
    return options


def _bind_host(host: str) -> str:
    """An IP address to bind: ``""`` (every interface) is ``::`` where IPv6 is available
    (dual-stack, so IPv4 too), else ``0.0.0.0``; a name is resolved."""
    if not host:
        return "::" if _ipv6_available() else "0.0.0.0"
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        resolved = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConfigError.at("http.addr", f"cannot resolve {host!r}: {exc.strerror}") from None
    return str(resolved[0][4][0])


def _ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::", 0))
    except OSError:
        return False
    return True


def client_ca_bundle(tls: TlsConfig | None, scratch: Path) -> Path | None:
    """One file of the ``clientcas`` certificates: Granian takes a single CA file."""
    if tls is None or not tls.clientcas:
        return None
    if len(tls.clientcas) == 1:
        return Path(tls.clientcas[0])
    bundle = scratch / "clientcas.pem"
    try:
        pems = [Path(path).read_text() for path in tls.clientcas]
    except OSError as exc:
        raise ConfigError.at("http.tls.clientcas", f"{exc.filename}: {exc.strerror}") from None
    bundle.write_text("\n".join(pem.strip() for pem in pems) + "\n")
    return bundle
