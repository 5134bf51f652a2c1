"""Secret tokens: generated once, shown once, stored only as a hash.

Tokens are 32 random bytes, so a plain SHA-256 is enough (no salt or slow hash
is needed against guessing a 256-bit secret) and lets us find a token by hash.
"""

from __future__ import annotations

import hashlib
import secrets


def new_token(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
