"""Fixtures of the end-to-end tests: real `vigil run` processes and Chromium."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vigil.testing import VigilProcess, scratch_database

OUTPUT_DIR = Path(
    os.environ.get("VIGIL_TEST_OUTPUT", Path(__file__).parent.parent / "test-results")
)
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def output_dir() -> Path:
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    return OUTPUT_DIR


@pytest.fixture(scope="module")
def vigil_server(tmp_path_factory):
    """`vigil run` with its local agent reporting every second."""
    with scratch_database() as database_url:
        proc = VigilProcess(tmp_path_factory.mktemp("vigil-data"), database_url)
        proc.env["VIGIL_LOCAL_AGENT_INTERVAL"] = "1"
        proc.start()
        try:
            yield proc
        finally:
            proc.stop()


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()
