"""Which series a rule watches and which alerts a silence mutes.

Label matchers are written as Prometheus writes them (`mountpoint=/`,
`device!~loop.*`), one per line or separated by commas, and parsed by the
query module's Matcher, so rules, silences and the query API agree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from vigil.metrics.query import Matcher, QueryError


def parse_matchers(text: str) -> list[Matcher]:
    """Matchers from text; ValueError names a bad one."""
    out = []
    for part in re.split(r"[\n,]", text or ""):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(Matcher.parse(part))
        except QueryError as exc:
            raise ValueError(str(exc)) from None
    return out


def labels_match(matchers: Iterable[Matcher], labels: dict[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


def render(template: str, values: dict[str, object], labels: dict[str, str]) -> str:
    """Fill {name} and {label:name} placeholders. Unknown ones stay as written:
    a typo in a rule shows up in its message instead of failing evaluation."""

    def one(found: re.Match) -> str:
        name, label = found.group(1), found.group(2)
        if name == "label" and label is not None:
            return labels.get(label, "")
        if name == "labels" and label is None:
            return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))
        if label is None and name in values:
            return _text(values[name])
        return found.group(0)

    return re.sub(r"\{(\w+)(?::([\w.\-/]+))?\}", one, template)


def _text(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.6g}"
    return "" if value is None else str(value)
