"""The alert replay's synthetic week, printed: incidents, notifications, time.

    .venv/bin/python bench/alert_replay.py [--database-url URL] [--days 7] [--profile FILE]

Replays the scenario of vigil/alerts/replay.py (50 servers, 5 locations,
samples every 5 minutes and evaluations every 10, the incidents the replay
test asserts) on a new database, then prints each incident with the
notifications it produced, and the seconds spent writing, marking servers
up and down, and evaluating. Without --database-url it uses a new SQLite
file in a temporary directory; with one, that PostgreSQL database must be
empty (it is migrated first). It prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="postgres://... of an empty database")
    parser.add_argument("--days", type=int, default=7, help="how much of the week (7)")
    parser.add_argument("--profile", type=Path, help="cProfile the replay into FILE")
    args = parser.parse_args()

    os.environ["VIGIL_DATA_DIR"] = tempfile.mkdtemp(prefix="vigil-bench-replay-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vigil.settings")
    # As in the test: agents report every 5 min, so a server is down at its
    # second missed report.
    os.environ["VIGIL_SERVER_DOWN_AFTER_SECONDS"] = "420"
    # DEBUG off: Django would keep every query of the week in memory.
    os.environ.setdefault("VIGIL_SECRET_KEY", "bench-only-" + "x" * 40)
    if args.database_url:
        os.environ["DATABASE_URL"] = args.database_url
    else:
        os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from vigil.alerts import replay
    from vigil.servers.models import Server

    call_command("migrate", verbosity=0)
    if Server.objects.exists():
        sys.exit("the database already has servers: give this benchmark an empty one")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO off")
    replay.setup()
    ticks = min(replay.TICKS, args.days * replay.DAY // replay.TICK)
    profile = cProfile.Profile() if args.profile else None
    began, cpu_began = time.perf_counter(), time.process_time()
    if profile is not None:
        profile.enable()
    spent = replay.run(ticks)
    if profile is not None:
        profile.disable()
    elapsed, cpu_time = time.perf_counter() - began, time.process_time() - cpu_began
    print(replay.summary(replay.sent()))
    parts = ", ".join(f"{k} {v:.1f} s" for k, v in spent.items())
    print(
        f"\n{ticks} ticks on {connection.vendor}: {elapsed:.1f} s ({parts}); "
        f"{elapsed / ticks * 1000:.1f} ms a tick; this process used {cpu_time:.1f} s of CPU"
    )
    if profile is not None:
        profile.dump_stats(args.profile)
        pstats.Stats(str(args.profile)).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
