"""`vigil scrape add|list|remove`: the exporters Vigil scrapes, from a shell."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from vigil.scrape.models import ScrapeTarget
from vigil.servers.models import Server


def _server(name: str) -> Server:
    """The server of that name or host name, created if new (as `vigil token create` does)."""
    found = (
        Server.objects.filter(name=name).first() or Server.objects.filter(host_name=name).first()
    )
    return found or Server.objects.create(name=name, host_name=name)


class Command(BaseCommand):
    help = "Manage the Prometheus exporters (node_exporter) that Vigil scrapes."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="scrape a URL for a server (created if new)")
        add.add_argument("--server", required=True, help="server name")
        add.add_argument("--url", required=True, help="e.g. http://10.0.0.5:9100/metrics")
        add.add_argument("--interval", type=int, default=15, help="seconds (default 15)")
        add.add_argument("--timeout", type=float, help="seconds (default: 5, at most the interval)")
        sub.add_parser("list", help="list targets and their state")
        remove = sub.add_parser("remove", help="stop scraping a URL")
        remove.add_argument("--server", required=True)
        remove.add_argument("--url", required=True)

    def handle(self, *args, action: str, **options):
        if action == "list":
            for t in ScrapeTarget.objects.select_related("server"):
                state = t.state if t.enabled else "disabled"
                error = f"  {t.last_error}" if t.last_error else ""
                where = f"{t.pk}  {t.server.name}  {t.display_url}"
                self.stdout.write(f"{where}  every {t.interval} s  {state}{error}")
            return
        if action == "remove":
            deleted, _ = ScrapeTarget.objects.filter(
                server__name=options["server"], url=options["url"]
            ).delete()
            if not deleted:
                raise CommandError("no such scrape target")
            self.stdout.write("removed")
            return
        interval = options["interval"]
        timeout = options["timeout"] or min(5.0, float(interval))
        with transaction.atomic():
            target = ScrapeTarget(
                server=_server(options["server"]),
                url=options["url"],
                interval=interval,
                timeout=timeout,
            )
            try:
                target.full_clean()
            except ValidationError as exc:
                messages = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
                raise CommandError(messages) from None
            target.save()
        self.stderr.write(f"Scraping {target.display_url} every {interval} s for {target.server}.")
        self.stdout.write(str(target.pk))
