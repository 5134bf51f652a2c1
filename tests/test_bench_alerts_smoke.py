"""bench/alerts.py at toy size: its set-up, a timed pass and its report run,
so that the benchmark cannot rot while the engine changes under it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from vigil.alerts.models import Alert, Rule

pytestmark = pytest.mark.django_db

BENCH = Path(__file__).resolve().parent.parent / "bench" / "alerts.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_alerts", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def test_it_builds_the_workload_and_times_every_rule_of_two_passes(capsys):
    bench = load_bench()
    # Four servers, every other one in trouble (numbers 1 and 3).
    work = bench.setup(4, passes=1, every=2, verbose=False)
    assert work.counts["series"] == 4 * 50
    assert len(work.silent) == 2 * 2  # the troubled servers' removed disk

    passes, timings = bench.run_passes(work, 1, verbose=False)

    rules = list(Rule.objects.filter(enabled=True))
    assert len(rules) == 6 + len(bench.BENCH_RULES)
    assert [p.counts["rules"] for p in passes] == [len(rules)] * 2
    assert not any(p.counts.get("errors") for p in passes)
    assert all(min(timings.of(rule.name, 2)) > 0 for rule in rules)
    # The parts are timed by wrapping engine functions: a renamed one fails here.
    for part in [*bench.PARTS.values(), *bench.OUTSIDE.values()]:
        assert min(timings.of(part, 2)) > 0, part
    assert passes[1].at == passes[0].at + bench.PASS_SECONDS
    # CPU at 97 % on the troubled servers: pending for the default rule's
    # 5 minutes; the swap rule of dc-1 has no duration and fires at once.
    cpu = Alert.objects.filter(rule__name="CPU above 90%")
    assert sorted(cpu.values_list("state", flat=True)) == [Alert.State.PENDING] * 2
    swap = Alert.objects.filter(rule__name=bench.RULE_PREFIX + "Swap above 50% in dc-1")
    assert sorted(swap.values_list("state", flat=True)) == [Alert.State.FIRING] * 2
    gone_quiet = Alert.objects.filter(rule__name__endswith="Disk reads stopped for 10 min")
    assert gone_quiet.filter(state=Alert.State.FIRING).count() == 2

    result = bench.report(work, passes, timings)
    assert result["first_pass"] > 0 and len(result["rules"]) == len(rules)
    assert "whole pass" in capsys.readouterr().out
