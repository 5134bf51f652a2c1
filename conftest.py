"""Fixtures shared by every test: process caches start empty for each test."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _empty_writer_caches():
    from vigil.ingest import auth, writer

    writer.clear_caches()
    auth.clear_token_cache()
    yield
    writer.clear_caches()
    auth.clear_token_cache()
