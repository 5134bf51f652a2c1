"""Parsing the times that users type: unix seconds or ISO 8601."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_time(text: str) -> int:
    """Unix seconds from '1732500000', '1732500000.5' or '2026-11-25T10:00:00Z'.

    A time without a zone is UTC. Raises ValueError with a readable message.
    """
    text = text.strip()
    try:
        return int(float(text))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text[:40]!r} is neither unix seconds nor an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())
