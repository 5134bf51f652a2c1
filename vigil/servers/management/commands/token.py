"""`vigil token create --name N [--server S]`: a new ingest token, shown once."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from vigil.servers.models import IngestToken, Server


class Command(BaseCommand):
    help = "Manage ingest tokens (the credentials of agents)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a token and print it once")
        create.add_argument("--name", required=True, help="what the token is for")
        create.add_argument(
            "--server",
            help="bind the token to this server (created if new); "
            "without it the token registers new servers by host name",
        )
        sub.add_parser("list", help="list tokens (never their secret)")

    def handle(self, *args, action: str, **options):
        if action == "list":
            for t in IngestToken.objects.select_related("server"):
                bound = t.server.name if t.server else "any host"
                state = "enabled" if t.enabled else "disabled"
                self.stdout.write(f"{t.prefix}…  {t.name}  ({bound}, {state})")
            return
        server = None
        if options["server"]:
            name = options["server"]
            server, _ = Server.objects.get_or_create(name=name, defaults={"host_name": name})
        name = options["name"].strip()
        if not name:
            raise CommandError("--name must not be empty")
        _, token = IngestToken.issue(name, server)
        scope = f"server {server.name}" if server else "any host (registers new servers)"
        self.stderr.write(f"Ingest token {name!r} for {scope}. It is shown only now; copy it:")
        self.stdout.write(token)
