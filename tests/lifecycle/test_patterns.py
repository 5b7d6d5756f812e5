"""The glob syntax shared by rules and policies, as Python, SQLite and PostgreSQL read it."""

from __future__ import annotations

import re
import sqlite3

import pytest

from dockyard.lifecycle.patterns import PatternError, matches, namespace_of, to_regex, validate


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("library/*", "library/nginx", True),
        ("library/*", "library/team/app", True),
        ("library/*", "library", False),
        ("library/*", "libraryx/nginx", False),
        ("*", "anything/at/all", True),
        ("v?", "v1", True),
        ("v?", "v10", False),
        ("1.*", "1.2", True),
        ("1.*", "102", False),  # "." is literal
        ("release-*", "release-", True),
        ("a+b", "a+b", True),
        ("a+b", "aab", False),
        ("V*", "v1", False),  # case matters
    ],
)
def test_matches_like_sqlite_glob(pattern: str, name: str, expected: bool) -> None:
    assert matches(pattern, name) is expected
    with sqlite3.connect(":memory:") as db:
        assert bool(db.execute("SELECT ? GLOB ?", (name, pattern)).fetchone()[0]) is expected
    assert bool(re.match(to_regex(pattern), name)) is expected


@pytest.mark.parametrize("pattern", ["", "v[0-9]", "a b", "x" * 300, "tag\n", "^v$"])
def test_patterns_that_cannot_match_alike_everywhere_are_refused(pattern: str) -> None:
    with pytest.raises(PatternError, match="invalid"):
        validate(pattern)


def test_namespace_is_the_first_component() -> None:
    assert namespace_of("library/nginx") == "library"
    assert namespace_of("a/b/c") == "a"
    assert namespace_of("alpine") == "alpine"
