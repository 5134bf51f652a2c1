from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from vigil.agent.spool import Spool
from vigil.agent.tests.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.start()
    yield r
    r.stop()


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    with Spool(tmp_path / "spool") as s:
        yield s
