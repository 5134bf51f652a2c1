"""Watermarks of the history jobs, kept in HistoryState rows."""

from __future__ import annotations

from vigil.metrics.models import HistoryState

ROLLUP_5M = "rollup_5m"
ROLLUP_1H = "rollup_1h"
COMPACTED = "compacted_until"


def get(name: str) -> int | None:
    return HistoryState.objects.filter(name=name).values_list("value", flat=True).first()


def put(name: str, value: int) -> None:
    HistoryState.objects.update_or_create(name=name, defaults={"value": value})
