"""`vigil run`: the all-in-one server of a laptop or a small site.

1. Migrate the database (SQLite under the data dir by default).
2. Create the admin user on first start and print its password once.
3. Start the embedded scheduler (unless Celery beat does that job).
4. Serve the web UI and APIs with waitress (threads: ingest never blocks pages).
5. Start an agent for this machine that reports to this very server over HTTP.
"""

from __future__ import annotations

import errno
import logging
import signal
import socket
import threading

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from vigil import embedded
from vigil.scheduler import Scheduler, default_jobs, history_jobs, notify_jobs

log = logging.getLogger("vigil.run")
ANY_ADDRESS = ("0.0.0.0", "::")  # noqa: S104 (only compared with, never bound by default)


def _stop(signum, frame):
    raise SystemExit(0)


class Command(BaseCommand):
    help = "Run Vigil: web UI, APIs, scheduler and a local agent, in one process."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
        parser.add_argument("--port", type=int, default=8000, help="port to listen on")
        parser.add_argument(
            "--no-local-agent", action="store_true", help="do not monitor this machine"
        )
        parser.add_argument("--threads", type=int, default=8, help="web server threads")

    def handle(self, *args, host: str, port: int, no_local_agent: bool, threads: int, **opts):
        from waitress import create_server

        from vigil.wsgi import application

        settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
        self.stdout.write(f"Data dir: {settings.DATA_DIR}")
        self.stdout.write("Migrating the database…")
        call_command("migrate", interactive=False, verbosity=1)
        password = embedded.ensure_admin()

        # The address Vigil is reached at here (and its local agent sends to)
        # is always an allowed host, whatever VIGIL_ALLOWED_HOSTS lists.
        shown_host = "127.0.0.1" if host in ANY_ADDRESS else host
        if ":" in shown_host:
            shown_host = f"[{shown_host}]"
        if shown_host not in settings.ALLOWED_HOSTS:
            settings.ALLOWED_HOSTS.append(shown_host)
        try:
            server = create_server(
                application,
                host=host,
                port=port,
                threads=threads,
                ident="vigil",
                max_request_body_size=settings.INGEST_MAX_BODY_BYTES * 2,
                channel_timeout=60,
                connection_limit=500,
            )
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CommandError(
                    f"port {port} on {host} is in use: stop what runs there, "
                    f"or start Vigil with --port"
                ) from None
            raise

        url = f"http://{shown_host}:{port}"
        password_file = settings.DATA_DIR / "admin-password"
        self.stdout.write(self.style.SUCCESS(f"\nVigil is running on {url}/"))
        if password:
            self.stdout.write(f"Log in as user 'admin' with password: {password}")
            self.stdout.write(f"(also in {password_file}, readable only by you)\n")
        elif password_file.exists():
            self.stdout.write(f"Log in as user 'admin'; its password is in {password_file}\n")
        else:
            self.stdout.write("Log in with your user (`vigil createsuperuser` makes one)\n")

        stop = threading.Event()
        schedulers: list[Scheduler] = []
        if not settings.CELERY_BROKER_URL:
            schedulers = [Scheduler(default_jobs()), Scheduler(notify_jobs(), "vigil-notify")]
            if history := history_jobs():
                schedulers.append(Scheduler(history, "vigil-history"))
            for scheduler in schedulers:
                scheduler.start()
        else:
            self.stdout.write("CELERY_BROKER_URL is set: Celery beat runs the periodic tasks.")
        if not no_local_agent:
            self._start_local_agent(url, stop)

        signal.signal(signal.SIGTERM, _stop)
        try:
            server.run()
        except (KeyboardInterrupt, SystemExit):
            self.stdout.write("Stopping…")
        finally:
            stop.set()
            server.close()
            for scheduler in schedulers:
                scheduler.stop()

    def _start_local_agent(self, url: str, stop: threading.Event) -> None:
        from vigil.agent.main import run_agent

        token = embedded.local_agent_token()
        thread = threading.Thread(
            target=run_agent,
            kwargs={
                "url": url,
                "token": token,
                "interval": settings.LOCAL_AGENT_INTERVAL_SECONDS,
                "spool_dir": settings.DATA_DIR / "agent-spool",
                "hostname": socket.gethostname(),
                "stop_event": stop,
            },
            name="vigil-local-agent",
            daemon=True,
        )
        thread.start()
        self.stdout.write(
            f"Local agent reports this machine ({socket.gethostname()}) "
            f"every {settings.LOCAL_AGENT_INTERVAL_SECONDS:g} s."
        )
