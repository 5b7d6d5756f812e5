"""Registry-wide switches that refuse writes or deletes."""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.errors import Unsupported

__all__ = ["Policy"]


@dataclass(frozen=True, slots=True)
class Policy:
    delete_enabled: bool = False
    readonly: bool = False

    def check_write(self) -> None:
        if self.readonly:
            raise Unsupported(message="registry is in read-only mode")

    def check_delete(self) -> None:
        self.check_write()
        if not self.delete_enabled:
            raise Unsupported(message="deletes are disabled (storage.delete.enabled)")
