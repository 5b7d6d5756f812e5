"""Where driver paths live in the bucket.

Every key sits below the configured root (``rootdirectory``, a plain key prefix). The bytes of an
unfinished object that do not yet fill a multipart part are kept in a *tail* object beside its
key, named with a ``~``: that character is outside the path grammar, so no client path can name
a tail and listings, which show only names within the grammar, never show one.
"""

from __future__ import annotations

from dockyard.storage.base import InvalidPath, check_path

__all__ = ["TAIL_SUFFIX", "Layout", "visible"]

TAIL_SUFFIX = "~tail"


def visible(name: str) -> bool:
    """Whether a key's last component can be a driver path component."""
    if not name or "/" in name:
        return False
    try:
        check_path(name)
    except InvalidPath:
        return False
    return True


class Layout:
    """Maps driver paths to keys below one root prefix."""

    def __init__(self, root: str = "") -> None:
        self.root = root.strip("/")
        self._prefix = f"{self.root}/" if self.root else ""

    def key(self, path: str) -> str:
        """The key of the object at ``path`` (a non-empty, checked path)."""
        return self._prefix + path

    def children(self, path: str) -> str:
        """The prefix every key below the directory ``path`` starts with (``""``: the root)."""
        return f"{self._prefix}{path}/" if path else self._prefix

    def path(self, key: str) -> str:
        """The driver path of a key below the root."""
        return key[len(self._prefix) :]

    @staticmethod
    def tail(key: str) -> str:
        return key + TAIL_SUFFIX
