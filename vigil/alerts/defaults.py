"""The rules a new Vigil starts with: the pages every operator wants on day
one. Created once, by the first migration; edit or disable them freely."""

from __future__ import annotations

DEFAULT_RULES = [
    {
        "name": "CPU above 90%",
        "severity": "warning",
        "kind": "threshold",
        "metric": "cpu_usage_percent",
        "aggregation": "last",
        "operator": ">",
        "threshold": 90.0,
        "recovery_threshold": 80.0,
        "for_seconds": 300,
        "description": "CPU of {server} at {value}% for 5 minutes.",
    },
    {
        "name": "Memory above 90%",
        "severity": "warning",
        "kind": "threshold",
        "metric": "memory_used_percent",
        "aggregation": "last",
        "operator": ">",
        "threshold": 90.0,
        "recovery_threshold": 85.0,
        "for_seconds": 300,
        "description": "Memory of {server} at {value}% for 5 minutes.",
    },
    {
        "name": "File system above 90%",
        "severity": "warning",
        "kind": "threshold",
        "metric": "filesystem_used_percent",
        "aggregation": "last",
        "operator": ">",
        "threshold": 90.0,
        "recovery_threshold": 85.0,
        "for_seconds": 120,
        "description": "{label:mountpoint} on {server} is {value}% full.",
    },
    {
        "name": "File system full within 24 h",
        "severity": "critical",
        "kind": "forecast",
        "metric": "filesystem_used_percent",
        "window_seconds": 6 * 3600,
        "operator": ">=",
        "threshold": 100.0,
        "forecast_seconds": 24 * 3600,
        "for_seconds": 600,
        "description": "{label:mountpoint} on {server} ({value}% now) will be full at {predicted}.",
    },
    {
        "name": "Server down",
        "severity": "critical",
        "kind": "host_down",
        "metric": "up",
        "aggregation": "last",
        "for_seconds": 120,
        "repeat_seconds": 3600,
        "description": "{server} has not reported for over 2 minutes.",
    },
    {
        "name": "Load per core above 2",
        "severity": "warning",
        "kind": "threshold",
        "metric": "load1",
        "aggregation": "last",
        "per_core": True,
        "operator": ">",
        "threshold": 2.0,
        "recovery_threshold": 1.5,
        "for_seconds": 600,
        "description": "Load of {server} at {value} per core for 10 minutes.",
    },
]


def create_default_rules(apps, schema_editor) -> None:
    Rule = apps.get_model("alerts", "Rule")
    for fields in DEFAULT_RULES:
        if not Rule.objects.filter(name=fields["name"]).exists():
            Rule.objects.create(is_default=True, **fields)
