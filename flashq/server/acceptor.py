"""The acceptor process: owns the client-facing listeners and routes every request.

It holds no queue state. It connects one link per shard process, then listens on TCP (and
the Unix socket when asked); every accepted connection gets a `ClientConnection` task.
SIGTERM stops the listeners, gives open connections `shutdown_grace_s` to finish what they
have in flight, then cancels the rest.
"""

from __future__ import annotations

import logging
import os
import signal
import socket

import trio

from flashq import busypoll
from flashq.config import Settings
from flashq.procsetup import freeze_startup_objects, watch_parent
from flashq.server.connection import ClientConnection
from flashq.server.events import EventHub
from flashq.server.router import Router
from flashq.server.shard_link import ShardLink

log = logging.getLogger("flashq.acceptor")

READY_PREFIX = "flashq acceptor listening on"


async def open_tcp_listener(host: str, port: int) -> trio.SocketListener:
    sock = trio.socket.socket(
        trio.socket.AF_INET6 if ":" in host else trio.socket.AF_INET, trio.socket.SOCK_STREAM
    )
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    await sock.bind((host, port))
    sock.listen(1024)
    return trio.SocketListener(sock)


async def open_unix_listener(path: str) -> trio.SocketListener:
    try:
        os.unlink(path)  # a stale socket file from a previous run
    except FileNotFoundError:
        pass
    sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    await sock.bind(path)
    sock.listen(1024)
    return trio.SocketListener(sock)


async def serve(settings: Settings) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch_parent)
        nursery.start_soon(busypoll.serve, settings.busy_poll_us)
        links = [
            ShardLink(i, settings.shard_socket(i), "acceptor") for i in range(settings.shard_procs)
        ]
        hub = EventHub()

        def events_wanted(on: bool) -> None:
            for lk in links:
                lk.set_events(on)

        hub.on_demand = events_wanted
        router = Router(links, nursery, hub)
        for lk in links:
            lk.on_message = router.on_shard_message
            await nursery.start(lk.run)

        if settings.http:
            from flashq.server.http import serve_http

            await nursery.start(serve_http, settings, router, hub)
        listeners = [await open_tcp_listener(settings.host, settings.tcp_port)]
        if settings.unix_socket:
            listeners.append(await open_unix_listener(settings.unix_socket))
        port = listeners[0].socket.getsockname()[1]
        handlers: set[ClientConnection] = set()

        async def handle(stream: trio.abc.Stream) -> None:
            if isinstance(stream, trio.SocketStream) and stream.socket.family != socket.AF_UNIX:
                stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = ClientConnection(stream, router, settings.auth_tokens)
            handlers.add(conn)
            try:
                await conn.serve()
            finally:
                handlers.discard(conn)

        async with trio.open_nursery() as conn_nursery:
            listen_scope = trio.CancelScope()

            async def listen() -> None:
                with listen_scope:
                    await trio.serve_listeners(handle, listeners, handler_nursery=conn_nursery)

            conn_nursery.start_soon(listen)
            where = f"tcp {settings.host}:{port}"
            if settings.unix_socket:
                where += f", unix {settings.unix_socket}"
            freeze_startup_objects()
            # The supervisor and tests wait for this line.
            print(f"{READY_PREFIX} {where}", flush=True)
            log.info("listening on %s", where)
            with trio.open_signal_receiver(signal.SIGTERM) as signals:
                async for _ in signals:
                    break
            log.info("draining %d connections", len(handlers))
            listen_scope.cancel()
            with trio.move_on_after(settings.shutdown_grace_s):
                while any(c.in_flight for c in handlers):  # noqa: ASYNC110 - polls many conns
                    await trio.sleep(0.05)
            conn_nursery.cancel_scope.cancel()
        nursery.cancel_scope.cancel()
