"""No access control: every request may do everything (Distribution without ``auth``)."""

from __future__ import annotations

from collections.abc import Sequence

from dockyard.auth.base import Access, Grant, RequestInfo

__all__ = ["OpenAccess"]


class OpenAccess:
    async def authorize(self, request: RequestInfo, wanted: Sequence[Access]) -> Grant:
        return Grant(subject=None)
