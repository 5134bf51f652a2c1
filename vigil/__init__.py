"""Vigil: server monitoring on Django."""

from __future__ import annotations

from vigil.celery import app as celery_app

__all__ = ["celery_app"]
