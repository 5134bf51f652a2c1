"""API tokens: a user's credential for scripts, distinct from ingest tokens."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from vigil.lib.tokens import hash_token, new_token


class ApiToken(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=12, editable=False)
    created = models.DateTimeField(default=timezone.now)
    last_used = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["user", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(cls, user, name: str) -> tuple[ApiToken, str]:
        """Create a token; the clear text is returned once and never stored."""
        token = new_token("vga")
        obj = cls.objects.create(
            user=user, name=name, token_hash=hash_token(token), prefix=token[:10]
        )
        return obj, token
