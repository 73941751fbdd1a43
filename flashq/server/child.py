"""Entry point of the acceptor and coordinator child processes (`python -m flashq.server.child`).

Settings come from the environment (`FLASHQ_SETTINGS_JSON`), never pickles or argv secrets.
"""

from __future__ import annotations

import os
import sys

import trio

from flashq.config import ENV_SETTINGS, Settings
from flashq.procsetup import become_child


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    role = args[0] if args else ""
    settings = Settings.from_json(os.environ[ENV_SETTINGS])
    become_child(role, settings.log_level)
    if role == "acceptor":
        from flashq.server import acceptor

        trio.run(acceptor.serve, settings)
    elif role == "coordinator":
        from flashq.coordinator import timers

        trio.run(timers.serve, settings)
    else:
        print(f"unknown role {role!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
