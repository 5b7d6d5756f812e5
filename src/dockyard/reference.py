"""Repository names and tags, with the grammar of the OCI distribution spec. Pure, no I/O."""

from __future__ import annotations

import re

from dockyard.errors import NameInvalid, TagInvalid

__all__ = ["MAX_NAME_LENGTH", "validate_name", "validate_tag"]

# The spec's grammar, composed from its named fragments.
_ALPHANUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:\.|_|__|-+)"
_PATH_COMPONENT = rf"{_ALPHANUMERIC}(?:{_SEPARATOR}{_ALPHANUMERIC})*"
_NAME = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")

# Distribution's limit on the repository part of a name.
MAX_NAME_LENGTH = 255


def validate_name(name: str) -> str:
    if len(name) > MAX_NAME_LENGTH:
        raise NameInvalid(message=f"repository name exceeds {MAX_NAME_LENGTH} characters")
    if _NAME.fullmatch(name) is None:
        raise NameInvalid(message=f"invalid repository name: {name[:300]!r}")
    return name


def is_tag(text: str) -> bool:
    return _TAG.fullmatch(text) is not None


def validate_tag(tag: str) -> str:
    if not is_tag(tag):
        raise TagInvalid(message=f"invalid tag: {tag[:200]!r}")
    return tag
