"""The alert engine's periodic task, a plain function for the embedded
scheduler and Celery beat alike."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime

import numpy as np
from django.utils import timezone

from vigil.alerts import dispatch
from vigil.alerts.engine import Context, close_disabled, evaluate_rule
from vigil.alerts.models import Rule
from vigil.alerts.outages import evaluate_locations
from vigil.metrics import locks
from vigil.metrics.models import Series
from vigil.servers.models import Server

log = logging.getLogger(__name__)


def context(now: datetime) -> Context:
    down = Server.objects.filter(status=Server.Status.DOWN).values_list("pk", flat=True)
    cores = {
        server_id: value
        for server_id, value in Series.objects.filter(
            metric="cpu_cores", last_value__gt=0
        ).values_list("server_id", "last_value")
    }
    return Context(now, np.array(sorted(down), dtype=np.int64), cores)


def evaluate_alerts(now: datetime | float | None = None) -> dict[str, int]:
    """Evaluate every enabled rule at `now`, then queue the notifications.

    A rule that fails (a bad regular expression typed into it, a database
    error) is logged and its error kept on the rule; the others go on."""
    if now is None:
        now = timezone.now()
    elif not isinstance(now, datetime):
        now = datetime.fromtimestamp(now, tz=UTC)
    # One pass at a time: a second worker skips, as history maintenance does.
    # Each rule's row lock and last_evaluated also make a repeated pass a no-op.
    with locks.exclusive("alerts") as won:
        if not won:
            return {"skipped_pass": 1}
        return _evaluate_all(now)


def _evaluate_all(now: datetime) -> dict[str, int]:
    ctx = context(now)
    totals: Counter[str] = Counter()
    for rule in Rule.objects.filter(enabled=True).order_by("pk"):
        try:
            counts = evaluate_rule(rule, ctx)
            if rule.kind == Rule.Kind.HOST_DOWN and not counts.get("skipped"):
                counts = Counter(counts) + Counter(evaluate_locations(rule, ctx))
        except Exception as exc:
            log.exception("alert rule %r failed to evaluate", rule.name)
            Rule.objects.filter(pk=rule.pk).update(last_error=f"{type(exc).__name__}: {exc}")
            totals["errors"] += 1
            continue
        totals.update({k: v for k, v in counts.items() if v})
        totals["rules"] += 1
    totals["closed"] += close_disabled(ctx)
    totals.update({f"sent_{k}": v for k, v in dispatch.run(now).items()})
    return dict(totals)
