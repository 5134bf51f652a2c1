"""Time for a server page's charts to draw a range, in headless Chromium.

    .venv/bin/python bench/chart_page.py --data-dir DIR [--database-url URL] [--range 30d]

Starts `vigil run` on an existing database (fill one with `vigil
generate_history`), logs in as admin, opens the first server's page, and
clicks the range button --repeat times (alternating with 1h, so that every
click fetches). For each click it reports the time until the last chart's
query answered and the page drew it. Saves a screenshot of the last draw to
--screenshot. It prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RANGES = {"1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
CHROMIUM = "/usr/bin/chromium"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--database-url")
    parser.add_argument("--range", choices=RANGES, default="30d")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--screenshot", type=Path, default=Path("test-results/bench-30d.png"))
    args = parser.parse_args()

    os.environ["VIGIL_DATA_DIR"] = str(args.data_dir)
    os.environ.setdefault("VIGIL_DEBUG", "true")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vigil.settings")
    if args.database_url:
        os.environ["DATABASE_URL"] = args.database_url
    import django

    django.setup()
    from playwright.sync_api import sync_playwright

    from vigil.servers.models import Server
    from vigil.testing import VigilProcess

    server = Server.objects.order_by("name").first()
    process = VigilProcess(args.data_dir, args.database_url, "--no-local-agent")
    process.env["VIGIL_HISTORY_INTERVAL_SECONDS"] = "0"  # maintenance off
    process.start(timeout=300)
    times = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM)
            page = browser.new_page(viewport={"width": args.width, "height": 1800})
            page.goto(f"{process.url}/login/?next=/servers/{server.pk}/")
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", process.admin_password)
            page.click("button[type=submit], input[type=submit]")
            page.wait_for_selector("[data-drawn=true]", timeout=60_000)
            charts = page.locator(".chart").count()
            for _ in range(args.repeat):
                page.click("button[data-range='3600']")
                page.wait_for_load_state("networkidle")
                # The browser keeps 250 resource timings by default: start afresh.
                began = page.evaluate("performance.clearResourceTimings(), performance.now()")
                page.click(f"button[data-range='{RANGES[args.range]}']")
                page.wait_for_load_state("networkidle")
                # The last chart query of this click answered (uPlot then draws
                # synchronously, in a few milliseconds).
                done = page.evaluate(
                    "b => Math.max(...performance.getEntriesByType('resource')"
                    ".filter(e => e.name.includes('/api/v1/query') && e.startTime >= b)"
                    ".map(e => e.responseEnd))",
                    began,
                )
                times.append(done - began)
            page.wait_for_timeout(3000)
            args.screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.screenshot), full_page=True)
            browser.close()
    finally:
        process.stop()
    times.sort()
    print(
        f"{server.name}: {charts} charts, range {args.range}, {args.repeat} clicks: "
        f"median {statistics.median(times):.0f} ms, worst {times[-1]:.0f} ms "
        "(from the click to the last chart's answer)"
    )
    print(f"screenshot: {args.screenshot}")


if __name__ == "__main__":
    main()
