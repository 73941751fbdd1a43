"""A scriptable stand-in for the server, on real sockets and threads (runtime-neutral).

It speaks the framing of `flashq.protocol` and answers a few test commands, so the
transports can be driven into the situations a real server produces only by chance:
replies out of order, no reply at all, a connection dropped mid-request, a restart.
"""

from __future__ import annotations

import itertools
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any

from flashq.protocol.framing import FrameDecoder, FrameError, encode_json, encode_msgpack_frame

Handler = Callable[[dict[str, Any]], dict[str, Any] | str | None]


class FakeServer:
    """Answers each request with `handle(request)`.

    The handler returns a reply body (the `reqId` is added), None for no reply, or "CLOSE"
    to drop the connection. With `reverse=True` the replies to the requests that arrived in
    one read are sent in reverse order.
    """

    def __init__(
        self, *, token: str | None = None, reverse: bool = False,
        tls: ssl.SSLContext | None = None,
    ) -> None:  # fmt: skip
        self.token = token
        self.tls = tls
        self.reverse = reverse
        self.requests: list[dict[str, Any]] = []
        self.accepted = 0
        self.port = 0
        self._ids = itertools.count(1)
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeServer:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        self.port = sock.getsockname()[1]
        self._listener = sock
        threading.Thread(target=self._accept_loop, args=(sock,), daemon=True).start()
        return self

    def stop(self) -> None:
        """Close the listener and every connection, as a dying server would."""
        if self._listener is not None:
            _close(self._listener)
            self._listener = None
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for conn in conns:
            _close(conn)

    def drop_connections(self) -> None:
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for conn in conns:
            _close(conn)

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- behaviour ---------------------------------------------------------------------------

    def handle(self, req: dict[str, Any]) -> dict[str, Any] | str | None:
        cmd = req.get("cmd")
        if cmd == "AUTH":
            if self.token is None or req.get("token") == self.token:
                return {"ok": True}
            return {"ok": False, "error": "Invalid token"}
        if cmd == "HANG":
            return None
        if cmd == "DROP":
            return "CLOSE"
        if cmd == "ERR":
            return {"ok": False, "error": req["text"]}
        if cmd == "PUSH":
            return {"ok": True, "id": next(self._ids)}
        if cmd == "GETJOB":
            job = {"id": req["id"], "queue": "q", "data": {"n": 1}, "priority": 3}
            return {"ok": True, "job": job, "state": "active"}
        if cmd == "PUSHB":
            return {"ok": True, "ids": [next(self._ids) for _ in req["jobs"]]}
        return {"ok": True, "echo": req}

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                self._conns.add(conn)
                self.accepted += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        decoder = FrameDecoder()
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            while True:
                data = conn.recv(1 << 16)
                if not data:
                    return
                out: list[bytes] = []
                for frame in decoder.feed(data):
                    if isinstance(frame, FrameError):
                        continue
                    with self._lock:
                        self.requests.append(frame)
                    req_id = frame.pop("reqId", None)
                    reply = self.handle(frame)
                    if reply == "CLOSE":
                        return
                    if reply is None or isinstance(reply, str):
                        continue
                    if req_id is not None:
                        reply = {**reply, "reqId": req_id}
                    encode = encode_json if decoder.mode == "json" else encode_msgpack_frame
                    out.append(encode(reply))
                if self.reverse:
                    out.reverse()
                if out:
                    conn.sendall(b"".join(out))
        except OSError:
            return
        finally:
            with self._lock:
                self._conns.discard(conn)
            _close(conn)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
