"""Scopes as the token specification writes them, and the ``access`` claim."""

from __future__ import annotations

from typing import Any

import pytest

from dockyard.auth.base import Access
from dockyard.auth.scope import access_detail, format_scope, parse_access_claim, parse_scope


def test_format_scope_sorts_actions_and_merges_resources_in_order() -> None:
    wanted = [
        Access.repository("b/repo", "push", "pull"),
        Access.repository("a/repo", "pull"),
        Access.repository("b/repo", "delete"),
    ]
    assert format_scope(wanted) == "repository:b/repo:delete,pull,push repository:a/repo:pull"


def test_format_scope_of_catalog_and_of_nothing() -> None:
    assert format_scope([Access.catalog()]) == "registry:catalog:*"
    assert format_scope([]) == ""
    assert format_scope([Access("repository", "x", frozenset())]) == ""


def test_access_detail_lists_one_record_per_action() -> None:
    assert access_detail([Access.repository("a/b", "push", "pull")]) == [
        {"Type": "repository", "Name": "a/b", "Action": "pull"},
        {"Type": "repository", "Name": "a/b", "Action": "push"},
    ]


def test_parse_scope_handles_ports_classes_and_several_scopes() -> None:
    parsed = parse_scope(
        "repository:localhost:5000/team/app:pull,push repository(plugin):p:pull registry:catalog:*"
    )
    assert parsed == [
        Access.repository("localhost:5000/team/app", "pull", "push"),
        Access.repository("p", "pull"),
        Access.catalog(),
    ]
    assert parse_scope("repository:a:") == [Access("repository", "a", frozenset())]


@pytest.mark.parametrize(
    "text", ["repository", "repository:name", "Repo:name:pull", "repository::pull", "r:n:PULL"]
)
def test_parse_scope_refuses_malformed(text: str) -> None:
    with pytest.raises(ValueError, match="malformed"):
        parse_scope(text)


def test_parse_access_claim() -> None:
    claim = [
        {"type": "repository", "name": "a", "actions": ["pull"]},
        {"type": "repository", "name": "a", "actions": ["push"]},
        {"type": "repository(plugin)", "name": "p", "actions": ["pull"]},
        {"type": "registry", "name": "catalog", "actions": ["*"]},
        {"type": "repository", "name": "none", "actions": None},
    ]
    assert parse_access_claim(claim) == {
        ("repository", "a"): frozenset({"pull", "push"}),
        ("repository", "p"): frozenset({"pull"}),
        ("registry", "catalog"): frozenset({"*"}),
        ("repository", "none"): frozenset(),
    }
    assert parse_access_claim(None) == {}
    assert parse_access_claim([]) == {}


@pytest.mark.parametrize(
    "claim",
    [
        "repository:a:pull",
        {"type": "repository"},
        ["not an object"],
        [{"type": "repository", "actions": ["pull"]}],
        [{"type": 1, "name": "a", "actions": ["pull"]}],
        [{"type": "repository", "name": "a", "actions": "pull"}],
        [{"type": "repository", "name": "a", "actions": [1]}],
    ],
)
def test_parse_access_claim_refuses_malformed(claim: Any) -> None:
    with pytest.raises(ValueError, match="access"):
        parse_access_claim(claim)
