"""Settings of the test suite: the real settings with a throwaway data dir."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("VIGIL_TESTING", "1")
os.environ.setdefault("VIGIL_DATA_DIR", tempfile.mkdtemp(prefix="vigil-test-"))
# Tests of single requests see their own commit; the group writer has its own tests.
os.environ.setdefault("VIGIL_INGEST_GROUP_COMMIT", "false")

from vigil.settings import *  # noqa: E402, F403
from vigil.settings import DATA_DIR, DATABASES  # noqa: E402

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not memory: WAL and several threads behave as in production.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
