"""Entry point of a shard process: `python -m shards INDEX` (settings from the environment)."""

from __future__ import annotations

import functools
import os
import signal
import sys

import trio

from flashq.config import ENV_SETTINGS, Settings
from flashq.procsetup import become_child, watch_parent
from shards.process import serve
from shards.storage import open_storage


async def _run(index: int, settings: Settings) -> None:
    storage = open_storage(settings.storage, settings.data_dir, settings.fsync)
    with trio.open_signal_receiver(signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch_parent)
            nursery.start_soon(
                functools.partial(
                    serve,
                    index,
                    settings.shard_procs,
                    settings.shard_socket(index),
                    storage,
                    inline_commits=settings.fsync == "never",
                    busy_poll_us=settings.busy_poll_us,
                )
            )
            async for _ in signals:
                break
            # Every acknowledged change is already committed (replies follow commits), so
            # stopping here loses nothing; serve() closes the storage on the way out.
            nursery.cancel_scope.cancel()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    index = int(args[0])
    settings = Settings.from_json(os.environ[ENV_SETTINGS])
    become_child(f"shard {index + 1}/{settings.shard_procs}", settings.log_level)
    trio.run(_run, index, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
