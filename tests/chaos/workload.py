"""Producers and workers that keep going through crashes, and a ledger of what was acknowledged.

Deliberately simple clients (raw sockets, one request at a time, reconnect on any error) so
that what the ledger records is exactly what the server acknowledged: a push counts only
once its success reply has been read; an error or a dropped connection means "unknown", and
such jobs are neither required nor forbidden to exist.
"""

from __future__ import annotations

import itertools
import random
import socket
import threading
import time
from collections import Counter
from typing import Any

import orjson

#: Short stall window so jobs held by a connection that died come back within the test.
STALL_MS = 1500


class Ledger:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acked_push_ids: list[int] = []  # every id a successful PUSH/PUSHB reply carried
        self.deliveries: Counter[int] = Counter()
        self.completed: set[int] = set()
        #: Jobs whose ACK/ACKB was sent but whose reply never came (a crash in between): the
        #: server may have completed them and, once past its completed-job retention, forgotten.
        self.ack_unconfirmed: set[int] = set()
        self.errors = 0
        self.pushes = 0

    def pushed(self, ids: list[int]) -> None:
        with self.lock:
            self.acked_push_ids.extend(ids)
            self.pushes += len(ids)

    def delivered(self, ids: list[int]) -> None:
        with self.lock:
            self.deliveries.update(ids)

    def done(self, ids: list[int]) -> None:
        with self.lock:
            self.completed.update(ids)
            self.ack_unconfirmed.difference_update(ids)

    def ack_sent(self, ids: list[int]) -> None:
        with self.lock:
            self.ack_unconfirmed.update(ids)

    def error(self) -> None:
        with self.lock:
            self.errors += 1


class SimpleClient:
    """One request at a time over JSON lines; any failure closes the socket."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.buf = b""
        self.ids = itertools.count(1)

    def call(self, cmd: dict[str, Any], timeout_s: float = 10.0) -> dict[str, Any]:
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout_s)
            self.buf = b""
        req_id = str(next(self.ids))
        try:
            self.sock.settimeout(timeout_s)
            self.sock.sendall(orjson.dumps({**cmd, "reqId": req_id}) + b"\n")
            while True:
                while b"\n" in self.buf:
                    line, self.buf = self.buf.split(b"\n", 1)
                    reply: dict[str, Any] = orjson.loads(line)
                    if reply.get("reqId") == req_id:
                        return reply
                data = self.sock.recv(1 << 16)
                if not data:
                    raise ConnectionError("closed")
                self.buf += data
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def producer(port: int, queue: str, ledger: Ledger, stop: threading.Event, seed: int) -> None:
    rng = random.Random(seed)
    client = SimpleClient(port)
    n = 0
    while not stop.is_set():
        n += 1
        time.sleep(0.02)  # a steady load the workers can keep up with, crashes included
        try:
            if rng.random() < 0.5:
                reply = client.call(
                    {"cmd": "PUSH", "queue": queue, "data": {"n": n}, "stall_timeout": STALL_MS}
                )
                if reply.get("ok"):
                    ledger.pushed([reply["id"]])
                else:
                    ledger.error()
            else:
                jobs = [{"data": {"n": n, "k": k}, "stall_timeout": STALL_MS} for k in range(50)]
                reply = client.call({"cmd": "PUSHB", "queue": queue, "jobs": jobs})
                if reply.get("ok"):
                    ledger.pushed(list(reply["ids"]))
                else:
                    ledger.error()
        except (OSError, ValueError):
            ledger.error()
            time.sleep(0.05)


def worker(port: int, queues: list[str], ledger: Ledger, stop: threading.Event, seed: int) -> None:
    rng = random.Random(seed)
    client = SimpleClient(port)
    while not stop.is_set():
        queue = rng.choice(queues)
        try:
            reply = client.call({"cmd": "PULLB", "queue": queue, "count": 200, "timeout": 200})
            if not reply.get("ok"):
                ledger.error()
                continue
            ids = [j["id"] for j in reply["jobs"]]
            if not ids:
                continue
            ledger.delivered(ids)
            ledger.ack_sent(ids)
            acked = client.call({"cmd": "ACKB", "ids": ids})
            if acked.get("ok") and acked["count"] == len(ids):
                ledger.done(ids)
            elif acked.get("ok"):
                # Some were not active any more (requeued after a crash): ack one by one.
                for job_id in ids:
                    if client.call({"cmd": "ACK", "id": job_id}).get("ok"):
                        ledger.done([job_id])
            else:
                ledger.error()
        except (OSError, ValueError):
            ledger.error()
            time.sleep(0.05)
