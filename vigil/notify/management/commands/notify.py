"""`vigil notify test CHANNEL`: send a test notification through a channel
(by name or id) and print what the receiver answered. Exit status 0 when
it was sent, 1 otherwise, with what to do about it."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from vigil.notify import configure
from vigil.notify.delivery import send_test
from vigil.notify.models import Channel
from vigil.notify.overview import channel_health, outcome_of_test


def find_channel(ref: str) -> Channel:
    """A channel by its name, or by its id when no channel has that name."""
    channel = Channel.objects.filter(name=ref).first()
    if channel is None and ref.isdigit() and len(ref) <= 18:
        channel = Channel.objects.filter(pk=int(ref)).first()
    if channel is None:
        names = ", ".join(Channel.objects.values_list("name", flat=True)[:20]) or "none yet"
        raise CommandError(f"no channel named {ref!r} (channels: {names})")
    return channel


class Command(BaseCommand):
    help = "Notification channels: send a test notification, list the channels."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        test = sub.add_parser("test", help="send a test notification through a channel now")
        test.add_argument("channel", help="the channel's name or id")
        sub.add_parser("list", help="list the channels and how they last fared")

    def handle(self, *args, action: str, **options):
        if action == "list":
            self.list()
            return
        channel = find_channel(options["channel"])
        if not channel.enabled:
            raise CommandError(
                f"{channel.name} is disabled, so it sends nothing: enable it on its page "
                f"(or with the API) and test it again.",
                returncode=1,
            )
        outcome, attempt = send_test(channel)
        outcome = outcome_of_test(outcome)
        secrets = channel.secrets
        self.stdout.write(f"{channel.name} ({configure.label_of(channel.kind)}): {outcome}")
        if attempt is not None:
            if attempt.status_code is not None:
                self.stdout.write(f"status: {attempt.status_code}")
            if attempt.answer:
                self.stdout.write(f"answer: {configure.redact(attempt.answer, secrets)}")
            if attempt.error:
                self.stdout.write(f"error: {configure.redact(attempt.error, secrets)}")
            self.stdout.write(f"took {attempt.duration_ms} ms")
        if outcome != "sent":
            raise CommandError(
                f"the test notification was not sent. Check the channel's settings and secrets "
                f"(the channel page or `vigil notify list`), that the receiver is reachable "
                f"from this host, and the error above; then run `vigil notify test "
                f"{channel.name}` again.",
                returncode=1,
            )

    def list(self) -> None:
        for channel in Channel.objects.all():
            state = "enabled" if channel.enabled else "disabled"
            secrets = configure.secret_state(channel.kind, channel.secrets)
            said = ", ".join(f"{k} {v}" for k, v in secrets.items()) or "no secrets"
            line = f"{channel.pk}  {channel.name}  ({channel.kind}, {state}; {said})"
            if channel_health(channel):
                error = configure.redact(channel.last_error, channel.secrets)
                line += f"  last error {channel.last_error_at:%Y-%m-%d %H:%M}: {error}"
            self.stdout.write(line)
