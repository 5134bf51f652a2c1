"""The `vigil` command: `vigil agent ...`, or any Django management command.

`vigil agent` imports no Django at all, because it runs on monitored servers
without a database. `vigil run` marks the process as the embedded server
before the settings load.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv if argv is None else argv)
    command = argv[1] if len(argv) > 1 else ""
    if command == "agent":
        from vigil.agent.main import main as agent_main

        sys.exit(agent_main(argv[2:]))
    if command == "run":
        os.environ.setdefault("VIGIL_EMBEDDED", "true")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vigil.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(argv)


if __name__ == "__main__":
    main()
