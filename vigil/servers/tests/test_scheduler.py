from __future__ import annotations

from django.conf import settings

from vigil.scheduler import Job, Scheduler, default_jobs, history_jobs, notify_jobs


def test_it_runs_each_job_when_due_and_survives_a_failing_one(db):
    calls: list[str] = []

    def boom():
        calls.append("boom")
        raise RuntimeError("broken")

    scheduler = Scheduler([Job("boom", 10, boom), Job("ok", 5, lambda: calls.append("ok"))])
    scheduler.run_due(100.0)
    scheduler.run_due(104.0)
    scheduler.run_due(105.0)
    scheduler.run_due(110.0)
    assert calls == ["boom", "ok", "ok", "boom", "ok"]


def test_it_runs_the_same_tasks_that_celery_beat_schedules():
    from vigil.celery import app

    app.loader.import_default_modules()
    beat_tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert beat_tasks <= set(app.tasks)
    jobs = default_jobs() + history_jobs() + notify_jobs()
    embedded = {job.func.__module__ + "." + job.func.__name__ for job in jobs}
    assert embedded == {
        "vigil.servers.tasks.update_up",
        "vigil.scrape.tasks.scrape_due",
        "vigil.metrics.tasks.maintain_history",
        "vigil.metrics.tasks.checkpoint_wal",
        "vigil.alerts.tasks.evaluate_alerts",
        "vigil.notify.tasks.deliver_notifications",
        "vigil.notify.tasks.watchdog_ping",
    }
    assert {app.tasks[name].run.__module__ for name in beat_tasks} == {
        "vigil.servers.celery_tasks",
        "vigil.scrape.celery_tasks",
        "vigil.metrics.celery_tasks",
        "vigil.alerts.celery_tasks",
        "vigil.notify.celery_tasks",
    }
