"""Template helpers of the alert pages and the navigation's firing count."""

from __future__ import annotations

from django import template

from vigil.alerts.overview import firing_count

register = template.Library()

BYTE_UNITS = ["B", "kB", "MB", "GB", "TB", "PB"]


@register.simple_tag
def firing_alert_count() -> int:
    """One count query, run only by pages that show the navigation."""
    return firing_count()


@register.filter
def metric_value(value: float | None, metric: str = "") -> str:
    """A value in its metric's unit: '93.2 %', '1.5 GB', '12 MB/s', '0.75'."""
    if value is None:
        return "–"
    if metric.endswith("_percent"):
        return f"{value:.1f} %"
    for suffix, unit in (("_bytes_per_second", "/s"), ("_bytes", "")):
        if metric.endswith(suffix):
            size, i = float(value), 0
            while abs(size) >= 1000 and i < len(BYTE_UNITS) - 1:
                size /= 1000
                i += 1
            return f"{size:.1f} {BYTE_UNITS[i]}{unit}" if i else f"{size:.0f} B{unit}"
    return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.6g}"


@register.filter
def label_pairs(labels: dict[str, str] | None) -> list[tuple[str, str]]:
    return sorted((labels or {}).items())


@register.filter
def from_now(moment) -> str:
    """'in 5 h', 'in 2 d': the future counterpart of `ago`."""
    from django.utils import timezone

    if moment is None:
        return ""
    seconds = int((moment - timezone.now()).total_seconds())
    if seconds <= 0:
        return "now"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"in {seconds // size} {unit}"
    return f"in {seconds} s"


DAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


@register.filter
def weekday_names(weekdays: str) -> str:
    """'5,6' as 'Sat, Sun'."""
    days = [int(d) for d in weekdays.replace(" ", "").split(",") if d.isdigit() and int(d) < 7]
    return ", ".join(DAY_NAMES[d] for d in sorted(set(days)))
