"""``storage``: exactly one driver, plus the keys Distribution keeps beside it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, ValidationInfo, model_validator

from dockyard.config.durations import Duration
from dockyard.config.fields import Model, Text, default_data_directory, environ_of

__all__ = [
    "DRIVERS",
    "S3_DIAL_TIMEOUT",
    "S3_READ_TIMEOUT",
    "CacheConfig",
    "DeleteConfig",
    "FilesystemConfig",
    "InMemoryConfig",
    "MaintenanceConfig",
    "ReadOnlyConfig",
    "RedirectConfig",
    "S3Config",
    "StorageConfig",
    "TagConfig",
    "UploadPurgingConfig",
]

DRIVERS = ("filesystem", "inmemory", "s3")
"""The storage drivers Dockyard runs."""

S3_DIAL_TIMEOUT = 5.0
"""Seconds to connect to the object store (``storage.s3.dialtimeout``)."""
S3_READ_TIMEOUT = 60.0
"""Seconds the store may keep silent, before answering or mid-body (``readtimeout``): long,
as some stores say nothing while they assemble a large multipart upload."""

# Keys of ``storage`` that configure the registry rather than name a driver.
_SETTINGS = frozenset({"delete", "maintenance", "cache", "redirect", "tag"})

MiB = 1024 * 1024
GiB = 1024 * MiB


class FilesystemConfig(Model):
    rootdirectory: Text
    """Where blobs live; defaults to ``$XDG_DATA_HOME/dockyard`` (``~/.local/share/...``)."""
    maxthreads: int = Field(100, ge=25)

    @model_validator(mode="before")
    @classmethod
    def _default_root(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict) and data.get("rootdirectory") in (None, ""):
            return {**data, "rootdirectory": default_data_directory(environ_of(info))}
        return data


_S3_STORAGE_CLASSES = (
    "NONE",
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "OUTPOSTS",
    "GLACIER_IR",
    "EXPRESS_ONEZONE",
)


def _storage_class(value: str) -> str:
    upper = value.upper()  # Distribution is lenient about case here
    if upper not in _S3_STORAGE_CLASSES:
        raise ValueError(f"must be one of {', '.join(_S3_STORAGE_CLASSES)}")
    return upper


def _s3_loglevel(value: Any) -> Any:
    # YAML 1.1 reads ``loglevel: off`` as false.
    return "off" if value is False else value


class S3Config(Model):
    """Distribution's ``s3`` driver keys; any S3-compatible store via ``regionendpoint``."""

    accesskey: Text | None = None
    secretkey: Text | None = None
    sessiontoken: Text | None = None
    region: Text | None = None
    regionendpoint: Text | None = None
    forcepathstyle: bool = False
    bucket: Text
    encrypt: bool = False
    keyid: Text | None = None
    secure: bool = True
    skipverify: bool = False
    v4auth: bool = True
    chunksize: int = Field(10 * MiB, ge=5 * MiB, le=5 * GiB)
    multipartcopychunksize: int = Field(32 * MiB, ge=5 * MiB, le=5 * GiB)
    multipartcopymaxconcurrency: int = Field(100, ge=1)
    multipartcopythresholdsize: int = Field(32 * MiB, ge=0, le=5 * GiB)
    rootdirectory: Text = ""
    storageclass: Annotated[Text, AfterValidator(_storage_class)] = "STANDARD"
    useragent: Text | None = None
    usedualstack: bool = False
    accelerate: bool = False
    usefipsendpoint: bool = False
    # Dockyard's own (Distribution has none): how long a silent store may hold a request.
    dialtimeout: Annotated[Duration, Field(gt=0)] = S3_DIAL_TIMEOUT
    readtimeout: Annotated[Duration, Field(gt=0)] = S3_READ_TIMEOUT
    objectacl: Literal[
        "private",
        "public-read",
        "public-read-write",
        "authenticated-read",
        "aws-exec-read",
        "bucket-owner-read",
        "bucket-owner-full-control",
    ] = "private"
    loglevel: Literal[
        "off",
        "debug",
        "debugwithsigning",
        "debugwithhttpbody",
        "debugwithrequestretries",
        "debugwithrequesterrors",
        "debugwitheventstreambody",
    ] = "off"

    @model_validator(mode="before")
    @classmethod
    def _loglevel_off(cls, data: Any) -> Any:
        if isinstance(data, dict) and "loglevel" in data:
            return {**data, "loglevel": _s3_loglevel(data["loglevel"])}
        return data

    @model_validator(mode="after")
    def _region_or_endpoint(self) -> S3Config:
        if not self.region and not self.regionendpoint:
            raise ValueError("region is required unless regionendpoint is set")
        return self


class InMemoryConfig(Model):
    """The volatile driver: no parameters."""


class DeleteConfig(Model):
    enabled: bool = False


class UploadPurgingConfig(Model):
    enabled: bool = True
    age: Duration = 168 * 3600.0
    interval: Duration = 24 * 3600.0
    dryrun: bool = False


class ReadOnlyConfig(Model):
    enabled: bool = False


class MaintenanceConfig(Model):
    uploadpurging: UploadPurgingConfig = UploadPurgingConfig()
    readonly: ReadOnlyConfig = ReadOnlyConfig()


class CacheConfig(Model):
    blobdescriptor: Literal["inmemory", "redis"] | None = None
    blobdescriptorsize: int = Field(10000, ge=0)
    """Entries kept by the ``inmemory`` cache; 0 means no limit."""

    @model_validator(mode="before")
    @classmethod
    def _layerinfo(cls, data: Any) -> Any:
        # ``layerinfo`` is Distribution's deprecated name for ``blobdescriptor``.
        if isinstance(data, dict) and "layerinfo" in data:
            data = dict(data)
            layerinfo = data.pop("layerinfo")
            data.setdefault("blobdescriptor", layerinfo)
        return data


class RedirectConfig(Model):
    disable: bool = False


class TagConfig(Model):
    concurrencylimit: int = Field(0, ge=0)
    """Concurrent tag lookups; 0 means one per core."""


def _unsupported_driver(value: Any) -> Any:
    raise ValueError(f"unsupported storage driver (Dockyard supports {', '.join(DRIVERS)})")


class StorageConfig(Model):
    """One driver section (``filesystem``, ``s3`` or ``inmemory``) and the registry's storage
    settings. Any other key is taken for a driver name, as Distribution does, and refused."""

    # Unknown keys land in the extras, whose validator refuses them at ``storage.<name>``.
    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, Annotated[Any, AfterValidator(_unsupported_driver)]] = Field(
        init=False
    )

    filesystem: FilesystemConfig | None = None
    s3: S3Config | None = None
    inmemory: InMemoryConfig | None = None
    delete: DeleteConfig = DeleteConfig()
    maintenance: MaintenanceConfig = MaintenanceConfig()
    cache: CacheConfig = CacheConfig()
    redirect: RedirectConfig = RedirectConfig()
    tag: TagConfig = TagConfig()

    @classmethod
    def coerce_raw(cls, data: Any) -> Any:
        """Distribution's shorthand ``storage: inmemory`` (also ``REGISTRY_STORAGE=s3``)."""
        if isinstance(data, str):
            return {data: {}}
        return {} if data is None else data

    @model_validator(mode="before")
    @classmethod
    def _one_driver(cls, data: Any) -> Any:
        data = cls.coerce_raw(data)
        if not isinstance(data, dict):
            return data
        drivers = [key for key in data if key not in _SETTINGS]
        if not drivers:
            return {**data, "filesystem": {}}
        # ``inmemory:`` is YAML null, yet names the driver.
        return {key: {} if key in drivers and data[key] is None else data[key] for key in data}

    @model_validator(mode="after")
    def _exactly_one(self) -> StorageConfig:
        configured = [name for name in DRIVERS if getattr(self, name) is not None]
        if len(configured) != 1:
            raise ValueError(
                f"exactly one storage driver may be configured, found {', '.join(configured)}"
            )
        return self

    @property
    def driver_name(self) -> str:
        """``filesystem``, ``s3`` or ``inmemory``."""
        return next(name for name in DRIVERS if getattr(self, name) is not None)
