"""Resource scopes, as the Docker token specification writes them.

A scope is ``type:name:action[,action...]``; several are joined by spaces. The name may hold
one ``:`` (a registry host's port), so the type ends at the first colon and the actions begin
after the last one. A type may carry a class in parentheses (``repository(plugin)``); the
class is deprecated and ignored, as Distribution does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from dockyard.auth.base import Access

__all__ = [
    "AccessMap",
    "access_detail",
    "format_scope",
    "merge",
    "parse_access_claim",
    "parse_scope",
    "resource_type",
]

AccessMap = Mapping[tuple[str, str], frozenset[str]]

_TYPE = re.compile(r"[a-z0-9]+(?:\([a-z0-9]+\))?")
_ACTION = re.compile(r"[a-z*]*")


def resource_type(text: str) -> str:
    """The type without its deprecated class: ``repository(plugin)`` -> ``repository``."""
    return text.partition("(")[0]


def merge(accesses: Iterable[Access]) -> dict[tuple[str, str], frozenset[str]]:
    """Actions per resource, resources in the order first named."""
    merged: dict[tuple[str, str], frozenset[str]] = {}
    for access in accesses:
        key = (access.type, access.name)
        merged[key] = merged.get(key, frozenset()) | access.actions
    return merged


def format_scope(accesses: Iterable[Access]) -> str:
    """The challenge's ``scope`` value: one ``type:name:actions`` per resource, actions sorted,
    resources separated by spaces."""
    return " ".join(
        f"{kind}:{name}:{','.join(sorted(actions))}"
        for (kind, name), actions in merge(accesses).items()
        if actions
    )


def access_detail(accesses: Iterable[Access]) -> list[dict[str, str]]:
    """The error envelope's ``detail``: one record per wanted action, as Distribution sends."""
    return [
        {"Type": kind, "Name": name, "Action": action}
        for (kind, name), actions in merge(accesses).items()
        for action in sorted(actions)
    ]


def parse_scope(text: str) -> list[Access]:
    """Every resource scope of a space-separated ``scope`` string; :class:`ValueError` if one is
    malformed."""
    out = []
    for item in text.split():
        kind, sep, rest = item.partition(":")
        name, sep2, actions = rest.rpartition(":")
        if not sep or not sep2 or not name or not _TYPE.fullmatch(kind):
            raise ValueError(f"malformed scope {item!r}")
        wanted = [a for a in actions.split(",") if a]
        if not all(_ACTION.fullmatch(a) for a in wanted):
            raise ValueError(f"malformed actions in scope {item!r}")
        out.append(Access(resource_type(kind), name, frozenset(wanted)))
    return out


def parse_access_claim(value: Any) -> dict[tuple[str, str], frozenset[str]]:
    """The token's ``access`` claim as actions per resource; :class:`ValueError` unless it is a
    list of ``{"type", "name", "actions"}`` objects."""
    if value is None:
        return {}
    if not isinstance(value, list):
        raise ValueError("access claim is not a list")
    granted: dict[tuple[str, str], frozenset[str]] = {}
    for entry in value:
        if not isinstance(entry, dict):
            raise ValueError("access entry is not an object")
        kind, name, actions = entry.get("type"), entry.get("name"), entry.get("actions")
        if not isinstance(kind, str) or not isinstance(name, str):
            raise ValueError("access entry needs a string type and name")
        if actions is None:
            actions = []
        if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
            raise ValueError("access entry actions are not a list of strings")
        key = (resource_type(kind), name)
        granted[key] = granted.get(key, frozenset()) | frozenset(actions)
    return granted
