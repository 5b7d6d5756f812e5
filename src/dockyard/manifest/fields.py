"""Checks on decoded JSON values. Each refusal is a ``ManifestInvalid`` that names the field.

Fields are named by their path in the document: ``config.digest``, ``layers[2].size``,
``manifests[0].platform.os``. The path is in the message (for people) and in ``detail``
as ``{"field": path}`` (for programs).
"""

from __future__ import annotations

import re
from typing import Any

from dockyard.errors import ManifestInvalid

__all__ = [
    "MAX_SIZE",
    "absent",
    "array",
    "child",
    "integer",
    "invalid",
    "json_kind",
    "media_type",
    "obj",
    "optional_media_type",
    "required",
    "shown",
    "size",
    "string",
    "string_map",
]

# Descriptor sizes are int64 in the specs (and in the metadata database).
MAX_SIZE = 2**63 - 1

# RFC 6838 section 4.2: type and subtype are restricted names.
_RESTRICTED_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
# Parameters are not part of RFC 6838 naming; accept them loosely (any printable text).
_PARAMETERS = r"(?:[ \t]*;[^\x00-\x1f\x7f]*)?"
_MEDIA_TYPE = re.compile(rf"{_RESTRICTED_NAME}/{_RESTRICTED_NAME}{_PARAMETERS}")

_SHOWN = 100  # characters of an offending value quoted in a message


def invalid(path: str, problem: str) -> ManifestInvalid:
    """The refusal of one field: ``manifest invalid: <path> <problem>``."""
    where = path or "manifest"
    return ManifestInvalid(detail={"field": where}, message=f"manifest invalid: {where} {problem}")


def child(path: str, key: str | int | None) -> str:
    """The path of a member (``str``) or an array element (``int``); ``path`` itself for None.

    Checks below take ``(value, path, key)`` and build the path only to refuse: most manifests
    are valid, and formatting every path would double the cost of parsing them.
    """
    if key is None:
        return path
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def json_kind(value: object) -> str:
    """The JSON name of a decoded value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__  # not produced by json.loads


def shown(value: object) -> str:
    """A value quoted in a message, cut short."""
    text = repr(value)
    return text if len(text) <= _SHOWN else f"{text[:_SHOWN]}..."


def obj(value: object, path: str, key: str | int | None = None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(child(path, key), f"must be a JSON object, not {json_kind(value)}")
    return value


def required(document: dict[str, Any], key: str, path: str) -> object:
    """The member ``key`` of the object at ``path``, which must be present."""
    try:
        return document[key]
    except KeyError:
        raise invalid(child(path, key), "is required") from None


def string(value: object, path: str, key: str | int | None = None) -> str:
    if not isinstance(value, str):
        raise invalid(child(path, key), f"must be a string, not {json_kind(value)}")
    return value


def integer(value: object, path: str, key: str | int | None = None) -> int:
    # bool is an int in Python but never in JSON; 2.0 is a number Go refuses as an int.
    if not isinstance(value, int) or isinstance(value, bool):
        problem = f"must be an integer, not {json_kind(value)} ({shown(value)})"
        raise invalid(child(path, key), problem)
    return value


def size(value: object, path: str, key: str | int | None = None) -> int:
    number = integer(value, path, key)
    if not 0 <= number <= MAX_SIZE:
        raise invalid(child(path, key), f"must be between 0 and {MAX_SIZE}, not {shown(number)}")
    return number


def array(value: object, path: str, key: str | int | None = None) -> list[Any]:
    if not isinstance(value, list):
        raise invalid(child(path, key), f"must be an array, not {json_kind(value)}")
    return value


def media_type(value: object, path: str, key: str | int | None = None) -> str:
    """A media type as RFC 6838 names them (``type/subtype``, optional parameters)."""
    text = string(value, path, key)
    if _MEDIA_TYPE.fullmatch(text) is None:
        problem = f"must be a media type (type/subtype), not {shown(text)}"
        raise invalid(child(path, key), problem)
    return text


def optional_media_type(document: dict[str, Any], key: str, path: str) -> str | None:
    """An optional media-type member such as ``artifactType``.

    The empty string counts as absent: the distribution spec treats an ``artifactType`` that is
    "empty or missing" alike.
    """
    value = document.get(key)
    if value is None and key not in document:
        return None
    if string(value, path, key) == "":
        return None
    return media_type(value, path, key)


def string_map(value: object, path: str, key: str | int | None = None) -> dict[str, str]:
    """A string-to-string map (image-spec annotation rules)."""
    mapping = obj(value, path, key)
    for name, item in mapping.items():
        if not isinstance(item, str):
            where = f"{child(path, key)}[{shown(name)}]"
            raise invalid(where, f"must be a string, not {json_kind(item)}")
    return dict(mapping)


def absent(document: dict[str, Any], keys: tuple[str, ...], kind: str) -> None:
    """Refuse members that belong to the other kind of document.

    A document with both ``layers`` and ``manifests`` reads as a different thing to different
    clients (CVE-2021-41190); a manifest must be one or the other.
    """
    for key in keys:
        if key in document:
            raise invalid(key, f"must not appear in {kind}")
