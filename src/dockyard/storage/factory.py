"""The storage driver a config names, with its ``middleware.storage`` applied."""

from __future__ import annotations

from dockyard.config import Config
from dockyard.storage.base import StorageDriver
from dockyard.storage.filesystem import FilesystemDriver
from dockyard.storage.redirect import wrap

__all__ = ["open_storage"]


def open_storage(config: Config) -> StorageDriver:
    """Raises ``ValueError`` naming the key for a driver this build does not have."""
    driver: StorageDriver
    if config.storage.filesystem is not None:
        driver = FilesystemDriver(config.storage.filesystem.rootdirectory)
    elif config.storage.s3 is not None:
        # Imported only for this driver: boto3 and botocore weigh some 25 MiB a process.
        from dockyard.storage.s3 import S3Driver

        driver = S3Driver.from_config(config.storage.s3)
    else:
        raise ValueError(f"storage.{config.storage.driver_name}: driver not available")
    return wrap(driver, config.middleware.get("storage"))
