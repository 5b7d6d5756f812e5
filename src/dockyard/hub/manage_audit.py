"""Reading the audit log (site administrators)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

from dockyard.hub.manage_base import MAX_PAGE, ManagementBase
from dockyard.hub.models import AuditEventOut, AuditPage
from dockyard.identity.base import AuditEvent, AuditFilter

__all__ = ["AuditManagement"]


def _when(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class AuditManagement(ManagementBase):
    """Audit log operations of :class:`~dockyard.hub.management.Management`."""

    async def audit(
        self, where: AuditFilter, *, after: int | None = None, limit: int = 100
    ) -> AuditPage:
        """Events ``where`` selects, oldest first, a page at a time (site administrators)."""
        self._require_admin()
        limit = max(1, min(limit, MAX_PAGE))
        records = await self.store.audit_page(where, after=after, limit=limit)
        events = [
            AuditEventOut(id=r.id, **{**_event_fields(r.event), "time": _when(r.event.time)})
            for r in records
        ]
        return AuditPage(events=events, next=records[-1].id if len(records) == limit else None)

    def export_audit(self, where: AuditFilter) -> AsyncIterator[AuditEventOut]:
        """Every event ``where`` selects, oldest first, read a page at a time (site
        administrators: checked now, before the first event is read)."""
        self._require_admin()
        return self._export(where)

    async def _export(self, where: AuditFilter) -> AsyncIterator[AuditEventOut]:
        after: int | None = None
        while True:
            page = await self.audit(where, after=after, limit=MAX_PAGE)
            for event in page.events:
                yield event
            if page.next is None:
                return
            after = page.next


def _event_fields(event: AuditEvent) -> dict[str, object]:
    return {
        "time": event.time,
        "action": event.action,
        "outcome": event.outcome,
        "actor": event.actor,
        "client_address": event.client_address,
        "repository": event.repository,
        "digest": event.digest,
        "tag": event.tag,
        "detail": event.detail,
    }
