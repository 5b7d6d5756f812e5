"""Which tags retention policies keep: the pure decision, on literal facts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dockyard.lifecycle.immutable import ImmutableRule
from dockyard.lifecycle.retention import RetentionPolicy, TagFacts, select_removals

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def _tag(name: str, days_ago: float, pulled_days_ago: float | None = None) -> TagFacts:
    pulled = None if pulled_days_ago is None else NOW - timedelta(days=pulled_days_ago)
    return TagFacts(
        "lib/app", name, 1, hash(name), f"sha256:{name}", NOW - timedelta(days=days_ago), pulled
    )


TAGS = [
    _tag("1.0", 9),
    _tag("1.1", 8),
    _tag("1.2", 7, pulled_days_ago=0.5),
    _tag("dev-x", 6),
    _tag("dev-y", 1),
    _tag("stable", 30),
]


def _removed(*policies: RetentionPolicy, immutable: tuple[ImmutableRule, ...] = ()) -> list[str]:
    removals, _ = select_removals(policies, TAGS, NOW, immutable)
    return [r.tag for r in removals]


def test_keep_last_counts_only_the_tags_the_policy_governs() -> None:
    assert _removed(RetentionPolicy(1, "lib/*", "1.*", keep_last=1)) == ["1.0", "1.1"]


def test_keep_within_keeps_tags_pushed_or_pulled_recently() -> None:
    policy = RetentionPolicy(1, "lib/*", keep_within=2 * 86400.0)
    # dev-y pushed a day ago, 1.2 pulled half a day ago.
    assert _removed(policy) == ["1.0", "1.1", "dev-x", "stable"]


def test_keep_pattern_and_immutable_tags_are_always_kept() -> None:
    policy = RetentionPolicy(1, "lib/*", keep_last=1, keep_pattern="stable")
    rule = ImmutableRule(7, "lib/app", "1.0", NOW)
    assert _removed(policy, immutable=(rule,)) == ["1.1", "1.2", "dev-x"]


def test_a_tag_kept_by_any_policy_stays() -> None:
    everything = RetentionPolicy(1, "lib/*", keep_last=1)
    dev = RetentionPolicy(2, "lib/app", "dev-*", keep_last=2)
    removals, kept = select_removals([everything, dev], TAGS, NOW)
    assert [(r.tag, r.policies) for r in removals] == [
        ("1.0", (1,)),
        ("1.1", (1,)),
        ("1.2", (1,)),
        ("stable", (1,)),
    ]
    assert kept == 2


def test_policies_for_other_repositories_remove_nothing() -> None:
    assert _removed(RetentionPolicy(1, "other/*", keep_last=1)) == []
