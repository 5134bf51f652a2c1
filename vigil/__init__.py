"""Vigil: server monitoring on Django.

Nothing is imported here: `vigil agent` runs on monitored servers without
Django or Celery. `celery -A vigil` finds the app in vigil/celery.py by itself.
"""
