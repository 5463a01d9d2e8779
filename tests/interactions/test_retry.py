"""Retry policy: which answers are retried and how long to wait."""

import email.utils

import pytest

from conversations.interactions.retry import RETRYABLE_STATUS, RetryPolicy, parse_retry_after


def test_it_retries_the_sdk_status_list():
    assert {408, 409, 429, 500, 502, 503, 504, 599} <= RETRYABLE_STATUS
    assert not {400, 401, 403, 404, 422} & RETRYABLE_STATUS


def test_it_reads_retry_after_seconds():
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "0.5"}) == 0.5


def test_it_prefers_retry_after_ms():
    assert parse_retry_after({"retry-after": "30", "retry-after-ms": "250"}) == 0.25


def test_it_reads_retry_after_http_dates():
    now = 1_700_000_000.0
    header = email.utils.formatdate(now + 7, usegmt=True)
    assert parse_retry_after({"retry-after": header}, now=now) == pytest.approx(7.0)
    past = email.utils.formatdate(now - 60, usegmt=True)
    assert parse_retry_after({"retry-after": past}, now=now) == 0.0


def test_it_ignores_garbage_retry_after():
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_it_backs_off_exponentially_with_jitter_and_a_cap():
    policy = RetryPolicy(base=0.5, cap=8.0, jitter=0.25)
    for attempt, full in enumerate([0.5, 1, 2, 4, 8, 8]):
        for _ in range(50):
            assert full * 0.75 <= policy.backoff(attempt) <= full


def test_it_stops_after_max_retries():
    policy = RetryPolicy(max_retries=2, base=0.01)
    assert policy.delay(0, None) is not None
    assert policy.delay(1, None) is not None
    assert policy.delay(2, None) is None


def test_it_honours_a_server_hint_but_not_an_absurd_one():
    policy = RetryPolicy(max_retry_after=60)
    assert policy.delay(0, 12.0) == 12.0
    assert policy.delay(0, 3600.0) is None
