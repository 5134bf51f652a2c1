from __future__ import annotations

import pytest

from vigil.agent.rates import counter_rate, counter_rates


@pytest.mark.parametrize(
    ("previous", "current", "elapsed", "expected"),
    [
        (1000.0, 3000.0, 10.0, 200.0),  # steady traffic
        (1000.0, 1000.0, 10.0, 0.0),  # an idle counter is a rate of 0, not a gap
        (0.0, 5.0, 0.5, 10.0),  # sub-second intervals scale up
        (None, 3000.0, 10.0, None),  # first reading: nothing to compare with
        (3000.0, 1000.0, 10.0, None),  # reset (reboot, interface re-created)
        (2.0**32 - 10, 5.0, 10.0, None),  # 32-bit wrap: the true rate is unknowable
        (1000.0, 3000.0, 0.0, None),  # no time passed
        (1000.0, 3000.0, -1.0, None),  # clock went backwards
    ],
)
def test_it_computes_a_per_second_rate_only_when_the_counter_moved_forward(
    previous: float | None, current: float, elapsed: float, expected: float | None
) -> None:
    assert counter_rate(previous, current, elapsed) == expected


def test_it_leaves_out_new_vanished_and_reset_counters() -> None:
    previous = {"eth0": 100.0, "eth1": 500.0, "gone0": 1.0}
    current = {"eth0": 300.0, "eth1": 10.0, "new0": 7.0}
    assert counter_rates(previous, current, 2.0) == {"eth0": 100.0}
