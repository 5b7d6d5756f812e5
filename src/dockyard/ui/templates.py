"""The Jinja2 environment of the pages: autoescaping on for every template, so that any
text from a user or an image (names, labels, history) is shown as text."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

__all__ = ["TEMPLATES", "environment", "human_size", "relative_time", "short_digest"]

TEMPLATES = Path(__file__).parent / "templates"


def human_size(size: int | None) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def relative_time(when: datetime | None, now: datetime | None = None) -> str:
    if when is None:
        return "never"
    seconds = int(((now or datetime.now(UTC)) - when).total_seconds())
    if seconds < 60:
        return "just now"
    for span, unit in ((86400 * 365, "year"), (86400 * 30, "month"), (86400, "day"),
                       (3600, "hour"), (60, "minute")):  # fmt: skip
        if seconds >= span:
            count = seconds // span
            return f"{count} {unit}{'s' if count > 1 else ''} ago"
    return "just now"


def short_digest(digest: str | None) -> str:
    if not digest:
        return ""
    algorithm, _, hex_ = digest.partition(":")
    return f"{algorithm}:{hex_[:12]}" if hex_ else digest[:19]


def _iso(when: datetime | None) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if when else ""


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["size"] = human_size
    env.filters["ago"] = relative_time
    env.filters["short"] = short_digest
    env.filters["iso"] = _iso
    return env
