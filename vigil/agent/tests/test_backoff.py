from __future__ import annotations

import pytest

from vigil.agent.backoff import Backoff, parse_retry_after


def test_it_doubles_from_one_second_to_the_maximum() -> None:
    backoff = Backoff(1.0, 60.0, random_fraction=lambda: 1.0)
    assert [backoff.next_delay() for _ in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]


def test_it_jitters_each_delay_between_half_and_all_of_it() -> None:
    low = Backoff(1.0, 60.0, random_fraction=lambda: 0.0)
    assert [low.next_delay() for _ in range(3)] == [0.5, 1.0, 2.0]


def test_it_starts_again_from_the_initial_delay_after_a_reset() -> None:
    backoff = Backoff(1.0, 60.0, random_fraction=lambda: 1.0)
    backoff.next_delay()
    backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() == 1.0


def test_it_waits_at_least_as_long_as_the_server_asks() -> None:
    backoff = Backoff(1.0, 0.1, random_fraction=lambda: 0.0)
    assert backoff.next_delay(retry_after=5.0) == 5.0
    assert Backoff(random_fraction=lambda: 1.0).next_delay(retry_after=5.0) == pytest.approx(5.5)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("5", 5.0),
        (" 30 ", 30.0),
        ("-3", 0.0),
        ("Thu, 01 Jan 2026 00:00:10 GMT", 10.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
    ],
)
def test_it_reads_retry_after_as_seconds_or_as_a_date(
    header: str | None, expected: float | None
) -> None:
    assert parse_retry_after(header, now=1767225600.0) == expected
