"""The whole configuration: Distribution's ``config.yml`` sections and Dockyard's own."""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from dockyard.config.durations import Duration
from dockyard.config.fields import (
    Headers,
    Model,
    Section,
    Text,
    default_data_directory,
    empty_list_if_null,
    environ_of,
)
from dockyard.config.http import HttpConfig
from dockyard.config.notifications import NotificationsConfig
from dockyard.config.storage import StorageConfig
from dockyard.config.tracing import TracingConfig

__all__ = [
    "DATABASE_CONNECTIONS",
    "AccessLogConfig",
    "Config",
    "DatabaseConfig",
    "FileCheck",
    "GcConfig",
    "HealthConfig",
    "HttpCheck",
    "HubConfig",
    "LogConfig",
    "RetentionConfig",
    "StorageDriverCheck",
    "TcpCheck",
    "UiConfig",
    "WebhooksConfig",
]

SUPPORTED_VERSION = "0.1"
DATABASE_CONNECTIONS = 20
"""PostgreSQL connections each process opens at most (``database.maxconnections``)."""


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


LogLevel = Annotated[Literal["error", "warn", "info", "debug"], BeforeValidator(_lower)]


class AccessLogConfig(Model):
    disabled: bool = False


class LogConfig(Model):
    level: LogLevel = "info"
    formatter: Literal["text", "json", "logstash"] = "text"
    fields: Section = {}
    """Static fields added to every log line."""
    accesslog: AccessLogConfig = AccessLogConfig()
    hooks: Annotated[list[dict[str, Any]], BeforeValidator(empty_list_if_null)] = []
    reportcaller: bool = False


class StorageDriverCheck(Model):
    enabled: bool = False
    interval: Duration = 10.0
    threshold: int = Field(1, ge=0)
    """Consecutive failures before unhealthy; 0 counts as 1, as in Distribution."""


class FileCheck(Model):
    file: Text
    interval: Duration = 10.0
    threshold: int = Field(1, ge=0)


class HttpCheck(Model):
    uri: Text
    headers: Headers = {}
    statuscode: int = 200
    timeout: Duration = 5.0
    interval: Duration = 10.0
    threshold: int = Field(1, ge=0)


class TcpCheck(Model):
    addr: Text
    timeout: Duration = 5.0
    interval: Duration = 10.0
    threshold: int = Field(1, ge=0)


class HealthConfig(Model):
    storagedriver: StorageDriverCheck = StorageDriverCheck()
    file: Annotated[list[FileCheck], BeforeValidator(empty_list_if_null)] = []
    http: Annotated[list[HttpCheck], BeforeValidator(empty_list_if_null)] = []
    tcp: Annotated[list[TcpCheck], BeforeValidator(empty_list_if_null)] = []


class DatabaseConfig(Model):
    """Dockyard's own: where the metadata lives."""

    url: Text | None = None
    """SQLAlchemy URL; default ``sqlite:///<data directory>/dockyard.db``."""
    maxconnections: int = Field(DATABASE_CONNECTIONS, gt=0)
    """PostgreSQL connections each worker process opens at most, and keeps open."""


class GcConfig(Model):
    """Dockyard's own: online garbage collection (see ``dockyard.core.gc``)."""

    enabled: bool = True
    interval: Duration = 3600.0
    grace: Duration = 24 * 3600.0
    """How long unreferenced content is kept before it may go (pushes in progress)."""
    deleteuntagged: bool = False


class RetentionConfig(Model):
    """Dockyard's own: applying the stored retention policies (see ``dockyard.lifecycle``)."""

    enabled: bool = True
    interval: Duration = 3600.0


class UiConfig(Model):
    """Dockyard's own: the web UI, served at ``/`` when ``auth.builtin`` is on."""

    enabled: bool = True
    signup: bool = False
    """Whether visitors may create their own accounts."""
    sessionsecret: Text | None = None
    """Signs session cookies; default: derived from ``http.secret``, else the token
    signing key, so that every worker and replica accepts the same cookies."""
    sessionlifetime: Duration = 12 * 3600.0


class WebhooksConfig(Model):
    """Dockyard's own: repository webhooks (see ``dockyard.events.webhooks``)."""

    allowprivate: bool = False
    """Whether webhooks may reach loopback, private and link-local addresses (checked when
    each delivery connects, so a name that later resolves to one is refused too)."""
    timeout: Duration = 10.0
    maxattempts: Annotated[int, Field(ge=1, le=100)] = 8
    backoff: Duration = 10.0
    """Wait after the first failed attempt; doubled after each further one."""
    maxbackoff: Duration = 3600.0
    history: Duration = 30 * 24 * 3600.0
    """How long finished deliveries are kept for the history."""


class HubConfig(Model):
    """Dockyard's own: what people configure on repositories from the web."""

    webhooks: WebhooksConfig = WebhooksConfig()


def _one_provider(value: Any) -> Any:
    # Distribution's shorthand ``auth: silly`` names a provider without parameters.
    if isinstance(value, str):
        return {value: {}}
    if value is None:
        return {}
    if isinstance(value, dict):
        if len(value) > 1:
            raise ValueError(
                f"exactly one auth provider may be configured, found {', '.join(value)}"
            )
        return {name: {} if params is None else params for name, params in value.items()}
    return value


Auth = Annotated[dict[str, dict[str, Any]], BeforeValidator(_one_provider)]


class Config(Model):
    """A loaded configuration. Build it with :func:`dockyard.config.load_config`."""

    version: Text = SUPPORTED_VERSION
    log: LogConfig = LogConfig()
    loglevel: LogLevel | None = None
    """Deprecated by Distribution in favour of ``log.level``, which it fills when unset."""
    # A factory: the default root directory depends on the environment.
    storage: StorageConfig = Field(default_factory=StorageConfig)
    http: HttpConfig = HttpConfig()
    health: HealthConfig = HealthConfig()
    database: DatabaseConfig = DatabaseConfig()
    gc: GcConfig = GcConfig()
    retention: RetentionConfig = RetentionConfig()
    ui: UiConfig = UiConfig()
    hub: HubConfig = HubConfig()
    auth: Auth = {}
    """The one access controller's name -> its parameters; empty for none."""
    notifications: NotificationsConfig = NotificationsConfig()
    redis: Section = {}
    middleware: Section = {}
    reporting: Section = {}
    proxy: Section = {}
    validation: Section = {}
    compatibility: Section = {}
    catalog: Section = {}
    policy: Section = {}
    tracing: TracingConfig = TracingConfig()

    _default_data_directory: str = PrivateAttr(default="")

    @model_validator(mode="before")
    @classmethod
    def _prepare(cls, data: Any) -> Any:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            return data
        # Validate ``storage`` even when absent, so that its default root directory comes
        # from the environment being loaded with.
        data = {"storage": None, **data}
        log = data.get("log") or {}
        if data.get("loglevel") is not None and isinstance(log, dict) and log.get("level") is None:
            data["log"] = {**log, "level": data["loglevel"]}
        return data

    @field_validator("version")
    @classmethod
    def _supported_version(cls, version: str) -> str:
        if version != SUPPORTED_VERSION:
            raise ValueError(f"unsupported version {version!r} (expected {SUPPORTED_VERSION})")
        return version

    @model_validator(mode="after")
    def _remember_data_directory(self, info: ValidationInfo) -> Config:
        self._default_data_directory = default_data_directory(environ_of(info))
        return self

    @property
    def data_directory(self) -> str:
        """The local directory for Dockyard's own files: the filesystem driver's root, else
        the default data directory."""
        if self.storage.filesystem is not None:
            return self.storage.filesystem.rootdirectory
        return self._default_data_directory or default_data_directory(os.environ)

    @property
    def database_url(self) -> str:
        """``database.url``, else SQLite in :attr:`data_directory`."""
        if self.database.url:
            return self.database.url
        return f"sqlite:///{os.path.join(self.data_directory, 'dockyard.db')}"
