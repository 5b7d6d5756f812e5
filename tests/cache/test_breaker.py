"""The circuit breaker's states, on a clock the test moves."""

from __future__ import annotations

import logging

import pytest

from dockyard.cache.breaker import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def breaker(clock: Clock) -> CircuitBreaker:
    return CircuitBreaker("test cache", cooldown=5.0, clock=clock)


def test_closed_lets_everything_through(breaker: CircuitBreaker) -> None:
    assert not breaker.is_open
    assert all(breaker.allow() for _ in range(10))
    breaker.succeeded()
    assert not breaker.is_open


def test_a_failure_opens_it_for_the_cooldown(breaker: CircuitBreaker, clock: Clock) -> None:
    breaker.failed(OSError("refused"))
    assert breaker.is_open
    assert not breaker.allow()
    clock.now += 4.9
    assert not breaker.allow()


def test_one_probe_after_the_cooldown(breaker: CircuitBreaker, clock: Clock) -> None:
    breaker.failed(OSError("refused"))
    clock.now += 5.0
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # everyone else waits for it
    breaker.succeeded()
    assert not breaker.is_open
    assert breaker.allow()
    assert breaker.allow()


def test_a_failed_probe_keeps_it_open(breaker: CircuitBreaker, clock: Clock) -> None:
    breaker.failed(OSError("refused"))
    clock.now += 5.0
    assert breaker.allow()
    breaker.failed(OSError("refused"))
    assert breaker.is_open
    clock.now += 4.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.allow()


def test_a_probe_that_never_reports_is_replaced(breaker: CircuitBreaker, clock: Clock) -> None:
    breaker.failed(OSError("refused"))
    clock.now += 5.0
    assert breaker.allow()  # a probe whose request was cancelled, say
    clock.now += 4.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.allow()


def test_logs_once_per_outage(
    breaker: CircuitBreaker, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="dockyard.cache")
    for _ in range(2):
        for _ in range(50):
            breaker.failed(TimeoutError("no answer"))
            clock.now += 1.0
            breaker.allow()
        breaker.succeeded()
        breaker.succeeded()
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 4
    assert "test cache is unavailable (no answer)" in messages[0]
    assert "test cache is available again, after 50.0s" in messages[1]
    assert messages[2:] == messages[:2]


def test_cooldown_must_be_positive() -> None:
    with pytest.raises(ValueError, match="cooldown"):
        CircuitBreaker("x", cooldown=0)
