"""``notifications``: Distribution's notification endpoints (see ``dockyard.events``)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, field_validator

from dockyard.config.durations import Duration
from dockyard.config.fields import Headers, Model, Text, TextList, empty_list_if_null

__all__ = ["EndpointConfig", "EventsConfig", "IgnoreConfig", "NotificationsConfig"]


class IgnoreConfig(Model):
    mediatypes: TextList = []
    actions: TextList = []


class EndpointConfig(Model):
    name: Text = Field(min_length=1)
    url: Text
    headers: Headers = {}
    # Distribution's defaults (notifications/endpoint.go) for zero values.
    timeout: Duration = 1.0
    threshold: int = Field(10, ge=0)
    """Consecutive failures after which delivery waits ``backoff`` between attempts."""
    backoff: Duration = 1.0
    ignoredmediatypes: TextList = []
    ignore: IgnoreConfig = IgnoreConfig()
    disabled: bool = False

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError as error:
            raise ValueError(f"invalid URL {url!r}: {error}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http:// or https:// URL with a host, not {url!r}")
        return url

    @field_validator("timeout", "backoff")
    @classmethod
    def _zero_is_default(cls, seconds: float) -> float:
        # Zero means Distribution's default; a zero timeout would fail every delivery.
        return seconds or 1.0

    @field_validator("threshold")
    @classmethod
    def _zero_threshold_is_default(cls, threshold: int) -> int:
        return threshold or 10

    def ignores(self, action: str, media_type: str | None) -> bool:
        """Whether events of this action and target media type are not sent here."""
        if action in self.ignore.actions:
            return True
        return media_type is not None and (
            media_type in self.ignoredmediatypes or media_type in self.ignore.mediatypes
        )


class EventsConfig(Model):
    includereferences: bool = False


class NotificationsConfig(Model):
    endpoints: Annotated[list[EndpointConfig], BeforeValidator(empty_list_if_null)] = []
    events: EventsConfig = EventsConfig()

    @field_validator("endpoints")
    @classmethod
    def _unique_names(cls, endpoints: list[EndpointConfig]) -> list[EndpointConfig]:
        # An endpoint's queue is kept under its name.
        names = [endpoint.name for endpoint in endpoints]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"endpoint names must be unique: {', '.join(duplicates)}")
        return endpoints

    @property
    def active(self) -> list[EndpointConfig]:
        """The endpoints that receive events."""
        return [endpoint for endpoint in self.endpoints if not endpoint.disabled]
