"""Production settings: refuse a missing secret key, pass `check --deploy`."""

from __future__ import annotations

import os
import subprocess
import sys


def vigil(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("VIGIL_", "DJANGO_"))}
    return subprocess.run(
        [sys.executable, "-m", "vigil.cli", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    result = vigil("check", VIGIL_DATA_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "VIGIL_SECRET_KEY is not set" in result.stderr


def test_production_settings_pass_the_deployment_checks(tmp_path):
    result = vigil(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        VIGIL_DATA_DIR=str(tmp_path),
        VIGIL_SECRET_KEY="a-long-random-production-key-" + "q7Zr" * 12,
        VIGIL_ALLOWED_HOSTS="vigil.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
