"""What `vigil run` sets up on first start: the admin user and the local agent's token."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model

from vigil.lib.tokens import hash_token
from vigil.servers.models import IngestToken


def write_secret_file(path: Path, text: str) -> None:
    """Write a file only its owner can read (mode 0600 from its creation)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)


def ensure_admin() -> str | None:
    """Create the `admin` superuser on first start; returns its password only then."""
    users = get_user_model()
    if users.objects.filter(is_superuser=True).exists():
        return None
    password = secrets.token_urlsafe(12)
    users.objects.create_superuser("admin", email="", password=password)
    write_secret_file(settings.DATA_DIR / "admin-password", password)
    return password


def local_agent_token() -> str:
    """The token of this machine's own agent, kept in the data dir (mode 0600).

    Only its hash is in the database; a missing or revoked token is replaced.
    """
    path = settings.DATA_DIR / "local-agent-token"
    if path.exists():
        token = path.read_text().strip()
        if IngestToken.objects.filter(token_hash=hash_token(token), enabled=True).exists():
            return token
    _, token = IngestToken.issue("local agent")
    write_secret_file(path, token)
    return token
