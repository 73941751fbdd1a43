"""`flashq serve`: start every flashQ process, restart the ones that die, stop them in order.

Children: N shard processes, one coordinator, one acceptor; each a separate Python process
running its own Trio loop. A child that exits is restarted after a backoff that doubles on
each quick death (capped) and resets once it has stayed up; every death is logged with its
exit status. SIGTERM/SIGINT stops the acceptor first (no new work, in-flight requests drain),
then the coordinator, then the shard processes (whose state is already committed), and exits 0.
Under systemd, READY=1 / STOPPING=1 / WATCHDOG=1 are sent when NOTIFY_SOCKET is set.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import sys
import tempfile

import attrs
import trio

from flashq.config import ENV_SETTINGS, Settings
from flashq.server.acceptor import READY_PREFIX

log = logging.getLogger("flashq.supervisor")

#: A child that stayed up this long is considered healthy: its next restart starts fresh.
_HEALTHY_AFTER_S = 10.0
_TERM_WAIT_S = 10.0


@attrs.define
class Child:
    name: str
    argv: list[str]
    restarts: int = 0
    process: trio.Process | None = None
    stopping: bool = False
    ready: trio.Event = attrs.field(factory=trio.Event)


def sd_notify(message: str) -> None:
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(message.encode(), path)
        except OSError as exc:
            log.warning("sd_notify failed: %s", exc)


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self.owns_run_dir = settings.run_dir is None
        run_dir = settings.run_dir or tempfile.mkdtemp(prefix="flashq-")
        self.settings = attrs.evolve(settings, run_dir=run_dir)
        py = sys.executable
        self.shards = [
            Child(f"shard {i + 1}/{settings.shard_procs}", [py, "-m", "shards", str(i)])
            for i in range(settings.shard_procs)
        ]
        self.coordinator = Child("coordinator", [py, "-m", "flashq.server.child", "coordinator"])
        self.acceptor = Child("acceptor", [py, "-m", "flashq.server.child", "acceptor"])

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env[ENV_SETTINGS] = self.settings.to_json()
        env.pop("NOTIFY_SOCKET", None)  # only the supervisor talks to systemd
        return env

    async def keep_running(self, child: Child) -> None:
        """Run `child` until it is asked to stop, restarting it whenever it exits."""
        backoff = 0.1
        while not child.stopping:
            started = trio.current_time()
            async with trio.open_nursery() as nursery:
                proc = await trio.lowlevel.open_process(
                    child.argv, env=self.env(), stdout=_stdout_for(child), stderr=None
                )
                child.process = proc
                if child is self.acceptor and proc.stdout is not None:
                    nursery.start_soon(self._relay_ready, proc.stdout, child)
                else:
                    child.ready.set()
                status = await proc.wait()
            child.process = None
            if child.stopping:
                break
            if trio.current_time() - started > _HEALTHY_AFTER_S:
                backoff = 0.1
            child.restarts += 1
            log.warning(
                "%s (pid %d) exited with status %s; restart #%d in %.1fs",
                child.name, proc.pid, status, child.restarts, backoff,
            )  # fmt: skip
            await trio.sleep(backoff)
            backoff = min(backoff * 2, self.settings.restart_backoff_max_s)

    async def _relay_ready(self, stdout: trio.abc.ReceiveStream, child: Child) -> None:
        """Pass the acceptor's stdout through, noting its readiness line."""
        buf = b""
        async for chunk in stdout:
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
            buf += chunk
            if READY_PREFIX.encode() in buf:
                child.ready.set()
                buf = b""

    async def stop(self, child: Child) -> None:
        child.stopping = True
        proc = child.process
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(signal.SIGTERM)
        with trio.move_on_after(_TERM_WAIT_S):
            await proc.wait()
            return
        log.warning("%s did not stop in %.0fs; killing it", child.name, _TERM_WAIT_S)
        proc.kill()
        await proc.wait()

    async def run(self) -> int:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            try:
                async with trio.open_nursery() as nursery:
                    for child in [*self.shards, self.coordinator, self.acceptor]:
                        nursery.start_soon(self.keep_running, child)
                    nursery.start_soon(self._notify_ready)
                    async for signum in signals:
                        log.info("received %s; shutting down", signal.Signals(signum).name)
                        break
                    sd_notify("STOPPING=1")
                    await self.stop(self.acceptor)
                    await self.stop(self.coordinator)
                    async with trio.open_nursery() as stoppers:
                        for child in self.shards:
                            stoppers.start_soon(self.stop, child)
                    nursery.cancel_scope.cancel()
            finally:
                if self.owns_run_dir and self.settings.run_dir:
                    shutil.rmtree(self.settings.run_dir, ignore_errors=True)
        log.info("stopped")
        return 0

    async def _notify_ready(self) -> None:
        await self.acceptor.ready.wait()
        sd_notify("READY=1")
        interval = _watchdog_interval_s()
        while interval:
            await trio.sleep(interval)
            sd_notify("WATCHDOG=1")


def _stdout_for(child: Child) -> int | None:
    import subprocess

    return subprocess.PIPE if child.name == "acceptor" else None


def _watchdog_interval_s() -> float:
    usec = os.environ.get("WATCHDOG_USEC")
    return int(usec) / 2e6 if usec and usec.isdigit() else 0.0


def run(settings: Settings) -> int:
    return trio.run(Supervisor(settings).run)
