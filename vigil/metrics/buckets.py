"""Cutting samples into time buckets: the arithmetic of rollups and queries.

Pure numpy, no database: rollups store what `aggregate` computes, queries
combine stored buckets into coarser ones with `combine`, and the tests compare
both against a brute-force loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Buckets:
    """Aggregates of consecutive time buckets; `ts` is each bucket's start."""

    ts: np.ndarray  # int64
    min: np.ndarray
    max: np.ndarray
    sum: np.ndarray
    count: np.ndarray  # int64
    last: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)

    @property
    def avg(self) -> np.ndarray:
        return self.sum / self.count

    @classmethod
    def empty(cls) -> Buckets:
        f = np.empty(0, dtype=np.float64)
        return cls(np.empty(0, dtype=np.int64), f, f, f, np.empty(0, dtype=np.int64), f)

    def select(self, mask: np.ndarray) -> Buckets:
        return Buckets(
            self.ts[mask],
            self.min[mask],
            self.max[mask],
            self.sum[mask],
            self.count[mask],
            self.last[mask],
        )


def floor(ts: np.ndarray | int, width: int) -> np.ndarray | int:
    """The start of the bucket of `width` seconds that holds ts (aligned to the epoch)."""
    return ts - ts % width


def _groups(starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the first element of each run of equal, sorted starts, and each run's last."""
    if len(starts) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    first = np.concatenate(([0], np.flatnonzero(np.diff(starts)) + 1))
    last = np.concatenate((first[1:] - 1, [len(starts) - 1]))
    return first, last


def aggregate(ts: np.ndarray, values: np.ndarray, width: int) -> Buckets:
    """Buckets of `width` seconds over samples sorted by ts (each ts once)."""
    if len(ts) == 0:
        return Buckets.empty()
    starts = floor(ts, width)
    first, last = _groups(starts)
    return Buckets(
        ts=starts[first].astype(np.int64),
        min=np.minimum.reduceat(values, first),
        max=np.maximum.reduceat(values, first),
        sum=np.add.reduceat(values, first),
        count=np.diff(np.append(first, len(ts))).astype(np.int64),
        last=values[last],
    )


def combine(b: Buckets, width: int) -> Buckets:
    """Finer buckets (sorted by ts) merged into buckets of `width` seconds."""
    if len(b) == 0:
        return Buckets.empty()
    starts = floor(b.ts, width)
    first, last = _groups(starts)
    return Buckets(
        ts=starts[first].astype(np.int64),
        min=np.minimum.reduceat(b.min, first),
        max=np.maximum.reduceat(b.max, first),
        sum=np.add.reduceat(b.sum, first),
        count=np.add.reduceat(b.count, first).astype(np.int64),
        last=b.last[last],
    )
