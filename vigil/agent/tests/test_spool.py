from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from vigil.agent.spool import Spool, SpoolLocked, load_batch

T0 = 1_732_500_000


def batch(ts: int, n: int = 3) -> list[dict[str, Any]]:
    return [{"metric": f"m{i}", "labels": {}, "points": [[ts, float(i)]]} for i in range(n)]


def test_it_stores_each_collection_as_a_ready_ingest_body(spool: Spool) -> None:
    entry = spool.write("web-1", batch(T0), now=T0 + 0.25)
    assert entry.name == f"{T0}250-0000000000-3.json"
    assert load_batch(entry.path.read_bytes()) == {"host": "web-1", "series": batch(T0)}
    assert spool.read(entry) == {"host": "web-1", "series": batch(T0)}
    assert (len(spool), spool.points, spool.total_bytes) == (1, 3, entry.path.stat().st_size)
    assert not [p for p in entry.path.parent.iterdir() if p.name.endswith(".tmp")]


def test_it_keeps_the_order_of_collection_across_a_restart(tmp_path: Path) -> None:
    with Spool(tmp_path) as first:
        for i in range(3):
            first.write("web-1", batch(T0 + i), now=T0 + i)
        # Two batches in the same millisecond are told apart by the sequence number.
        first.write("web-1", batch(T0 + 3), now=T0 + 2)
    with Spool(tmp_path) as second:
        second.write("web-1", batch(T0 + 4), now=T0 + 4)
        assert [second.read(e)["series"][0]["points"][0][0] for e in second.pending()] == [
            T0,
            T0 + 1,
            T0 + 2,
            T0 + 3,
            T0 + 4,
        ]
        assert [e.seq for e in second.pending()] == [0, 1, 2, 3, 4]


def test_it_refuses_a_second_agent_on_the_same_directory(tmp_path: Path) -> None:
    with Spool(tmp_path), pytest.raises(SpoolLocked, match="in use by another agent"):
        Spool(tmp_path)
    Spool(tmp_path).close()  # free again once the first one closed


def test_it_drops_the_oldest_batches_when_the_spool_is_full(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Spool(tmp_path) as probe:
        size = probe.write("web-1", batch(T0), now=T0).size
        probe.remove(probe.pending())
    with Spool(tmp_path, max_bytes=size * 3) as spool, caplog.at_level(logging.WARNING):
        for i in range(5):
            spool.write("web-1", batch(T0 + i), now=T0 + i)
        kept = [spool.read(e)["series"][0]["points"][0][0] for e in spool.pending()]
        assert kept == [T0 + 2, T0 + 3, T0 + 4]
        assert spool.total_bytes <= size * 3
        assert len(list(tmp_path.glob("*.json"))) == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings, "the operator must hear that data is being dropped"
    assert "is full" in warnings[0] and "dropped the 1 oldest batches (3 samples)" in warnings[0]


def test_it_sums_up_further_drops_instead_of_warning_at_every_collection(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Spool(tmp_path, max_bytes=1) as spool, caplog.at_level(logging.WARNING):
        for i in range(6):
            spool.write("web-1", batch(T0 + i), now=T0 + i)
        spool.max_bytes = 10**9  # the sender caught up: the spool is no longer full
        spool.write("web-1", batch(T0 + 6), now=T0 + 6)
    warnings = [r.getMessage() for r in caplog.records if "full" in r.getMessage()]
    assert len(warnings) == 2
    assert "is full" in warnings[0] and "(3 samples)" in warnings[0]
    assert "was full" in warnings[1] and "dropped the 4 oldest batches (12 samples)" in warnings[1]


def test_it_removes_a_corrupt_batch_and_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Spool(tmp_path) as spool:
        good = spool.write("web-1", batch(T0), now=T0)
        bad = spool.write("web-1", batch(T0 + 1), now=T0 + 1)
    bad.path.write_bytes(bad.path.read_bytes()[:25])  # as a crash might leave it
    (tmp_path / "0000000000000-0000000009-1.json").write_bytes(b'{"host": 1}')
    with Spool(tmp_path) as spool, caplog.at_level(logging.ERROR):
        batches = [spool.read(e) for e in spool.pending()]
        assert [b is not None for b in batches] == [False, True, False]
        assert [e.name for e in spool.pending()] == [good.name]
        assert not bad.path.exists()
    assert len([r for r in caplog.records if "corrupt batch" in r.getMessage()]) == 2


def test_it_removes_unfinished_temporary_files_and_ignores_foreign_ones(tmp_path: Path) -> None:
    (tmp_path / ".1732500000000-0000000000-3.json.tmp").write_bytes(b'{"host": "web-1", "se')
    (tmp_path / "README").write_text("not a batch")
    with Spool(tmp_path) as spool:
        assert spool.pending() == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "README"]


def test_a_batch_dropped_while_being_sent_is_forgotten_without_error(spool: Spool) -> None:
    entry = spool.write("web-1", batch(T0), now=T0)
    entry.path.unlink()
    assert spool.read(entry) is None
    spool.remove([entry])
    assert (len(spool), spool.total_bytes) == (0, 0)
