"""README Markdown to HTML that cannot run script.

Two layers: markdown-it (CommonMark) with raw HTML disabled, so that tags in the text come
out as text; then nh3 (the ammonia sanitiser) with an allow-list of tags and attributes and
only http, https and mailto links, so that nothing the renderer emits (a ``javascript:``
link, an event handler) survives. Links get ``rel="noopener noreferrer nofollow"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import nh3
from markupsafe import Markup

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

__all__ = ["render"]

_TAGS = {
    "a", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
    "img", "li", "ol", "p", "pre", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "th": {"align"},
    "td": {"align"},
    "code": {"class"},
}


def _renderer() -> MarkdownIt:
    # Imported at the first README shown, not by every worker at start (some 6 MiB).
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def render(text: str) -> Markup:
    """Safe HTML for ``text``."""
    html = _renderer().render(text)
    clean = nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    # Sanitised just above: the one place HTML is trusted.
    return Markup(clean)
