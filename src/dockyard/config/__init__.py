"""Typed configuration: Distribution's ``config.yml`` keys, Dockyard's own sections, and
``REGISTRY_*`` environment overrides.

    load_config(path, environ) -> Config     frozen pydantic models, validated at load
    ConfigError                              names each offending key path
"""

from dockyard.config.durations import parse_duration
from dockyard.config.errors import ConfigError, Problem
from dockyard.config.fields import default_data_directory, parse_tcp_address
from dockyard.config.http import (
    DebugConfig,
    H2cConfig,
    Http2Config,
    HttpConfig,
    LetsEncryptConfig,
    PrometheusConfig,
    TlsConfig,
)
from dockyard.config.load import LoadedConfig, load_config, read_config
from dockyard.config.models import (
    AccessLogConfig,
    Config,
    DatabaseConfig,
    FileCheck,
    HealthConfig,
    HttpCheck,
    LogConfig,
    StorageDriverCheck,
    TcpCheck,
)
from dockyard.config.storage import (
    DRIVERS,
    CacheConfig,
    DeleteConfig,
    FilesystemConfig,
    InMemoryConfig,
    MaintenanceConfig,
    ReadOnlyConfig,
    RedirectConfig,
    S3Config,
    StorageConfig,
    TagConfig,
    UploadPurgingConfig,
)

__all__ = [
    "DRIVERS",
    "AccessLogConfig",
    "CacheConfig",
    "Config",
    "ConfigError",
    "DatabaseConfig",
    "DebugConfig",
    "DeleteConfig",
    "FileCheck",
    "FilesystemConfig",
    "H2cConfig",
    "HealthConfig",
    "Http2Config",
    "HttpCheck",
    "HttpConfig",
    "InMemoryConfig",
    "LetsEncryptConfig",
    "LoadedConfig",
    "LogConfig",
    "MaintenanceConfig",
    "Problem",
    "PrometheusConfig",
    "ReadOnlyConfig",
    "RedirectConfig",
    "S3Config",
    "StorageConfig",
    "StorageDriverCheck",
    "TagConfig",
    "TcpCheck",
    "TlsConfig",
    "UploadPurgingConfig",
    "default_data_directory",
    "load_config",
    "parse_duration",
    "parse_tcp_address",
    "read_config",
]
