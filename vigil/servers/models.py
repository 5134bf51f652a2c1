"""Where metrics come from: locations, servers, their tags and ingest tokens."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from vigil.lib.tokens import hash_token, new_token


class Location(models.Model):
    """A data centre, office or cloud region."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    name = models.SlugField(max_length=64, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Server(models.Model):
    class Status(models.TextChoices):
        NEW = "new", "new"
        UP = "up", "up"
        DOWN = "down", "down"
        RETIRED = "retired", "retired"

    name = models.CharField(max_length=253, unique=True)
    host_name = models.CharField(max_length=253, unique=True)
    location = models.ForeignKey(
        Location, null=True, blank=True, on_delete=models.SET_NULL, related_name="servers"
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="servers")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    created = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(null=True, blank=True)
    # What ingest had to refuse from this server (an agent that never retries,
    # like collectd, loses it): shown on the server page.
    rejected_samples = models.BigIntegerField(default=0, editable=False)
    last_rejection = models.TextField(blank=True, editable=False)
    last_rejection_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def is_overdue(self, now=None) -> bool:
        """True once the server has not reported for SERVER_DOWN_AFTER_SECONDS."""
        if self.last_seen is None:
            return False
        now = now or timezone.now()
        return now - self.last_seen > timedelta(seconds=settings.SERVER_DOWN_AFTER_SECONDS)


class IngestToken(models.Model):
    """A credential for agents. Bound to one server, or registering servers by host name."""

    name = models.CharField(max_length=100)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=12, editable=False, help_text="Shown to tell tokens apart")
    server = models.ForeignKey(
        Server,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="ingest_tokens",
        help_text="Empty: the token registers new servers by host name.",
    )
    enabled = models.BooleanField(default=True)
    created = models.DateTimeField(default=timezone.now)
    last_used = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(cls, name: str, server: Server | None = None) -> tuple[IngestToken, str]:
        """Create a token; the clear text is returned once and never stored."""
        token = new_token("vgi")
        obj = cls.objects.create(
            name=name, server=server, token_hash=hash_token(token), prefix=token[:10]
        )
        return obj, token
