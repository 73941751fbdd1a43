"""A blocking connection: plain socket, same session, pipelined batches (no event loop)."""

from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING, Any, final

from flashq.client._errors import ClientClosedError, ConnectError
from flashq.client._session import Reply, Session
from flashq.errors import ConnectionClosedError, FlashQError, TimeoutError_

if TYPE_CHECKING:
    from flashq.client.options import ClientOptions

__all__ = ["BlockingConnection"]

_RECEIVE_BYTES = 256 * 1024


@final
class BlockingConnection:
    """One socket used by one thread at a time; requests of a batch are sent in one write.

    A request that times out is forgotten, and its late reply dropped, so the connection
    stays usable; one lost (or undecodable) stream fails what is in flight and the
    connection is `closed` for good.
    """

    def __init__(self, options: ClientOptions) -> None:
        where = f"{options.host}:{options.port}"
        try:
            sock = socket.create_connection(
                (options.host, options.port), timeout=options.connect_timeout_s
            )
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if options.ssl_context is not None:
                sock = options.ssl_context.wrap_socket(sock, server_hostname=options.host)
        except OSError as exc:
            raise ConnectError(f"cannot connect to {where}: {exc}") from exc
        self._sock = sock
        self._tls = options.ssl_context is not None
        self._session: Session[int] = Session(binary=options.binary)
        self._closed = False
        if options.token:
            try:
                self.request({"cmd": "AUTH", "token": options.token}, options.connect_timeout_s)
            except BaseException:
                self.close()
                raise

    @property
    def closed(self) -> bool:
        return self._closed or self._session.closed_error is not None

    def usable(self) -> bool:
        """False when closed, or when the server has closed its end meanwhile.

        Without an event loop nobody reads an idle socket, so a server restart would only
        show when the next request's reply fails to come: one non-blocking peek per
        checkout finds the EOF first, and the caller reconnects instead of failing.
        """
        if self.closed:
            return False
        if self._tls:  # TLS sockets refuse MSG_PEEK; the first call after a drop may fail
            return True
        try:
            self._sock.settimeout(0.0)
            data = self._sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return True  # alive, nothing pending
        except OSError as exc:
            self._lose(ConnectionClosedError(f"connection lost: {exc}"))
            return False
        if not data:
            self._lose(ConnectionClosedError("connection closed by the server"))
            return False
        return True

    def request(self, fields: dict[str, Any], timeout_s: float | None) -> dict[str, Any]:
        reply = self.request_many([fields], timeout_s)[0]
        if isinstance(reply, FlashQError):
            raise reply
        return reply

    def request_many(self, requests: list[dict[str, Any]], timeout_s: float | None) -> list[Reply]:
        """Send every request in one write, then read until each has its reply."""
        if self._closed:
            raise ClientClosedError("the client is closed")
        session = self._session
        req_ids: list[str] = []
        chunks: list[bytes] = []
        try:
            for index, fields in enumerate(requests):
                req_id, data = session.request(fields, index)
                req_ids.append(req_id)
                chunks.append(data)
        except BaseException:
            self._forget(req_ids)
            raise
        try:
            self._sock.settimeout(timeout_s)
            self._sock.sendall(b"".join(chunks))
        except BaseException as exc:
            # A partial write leaves the stream unframeable: this connection is done.
            self._lose(ConnectionClosedError(f"connection lost while sending: {exc!r}"))
            if isinstance(exc, OSError):
                raise ConnectionClosedError(f"connection lost while sending: {exc}") from exc
            raise
        return self._receive(req_ids, timeout_s, requests[0].get("cmd"))

    def _receive(self, req_ids: list[str], timeout_s: float | None, cmd: Any) -> list[Reply]:
        session = self._session
        results: list[Reply | None] = [None] * len(req_ids)
        remaining = len(req_ids)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        try:
            while remaining:
                if deadline is not None:
                    self._sock.settimeout(max(0.0, deadline - time.monotonic()))
                data = self._sock.recv(_RECEIVE_BYTES)
                if not data:
                    raise ConnectionClosedError("connection closed by the server")
                for index, reply in session.receive(data):
                    results[index] = reply
                    remaining -= 1
                if session.closed_error is not None:  # undecodable stream
                    self._lose(session.closed_error)
                    break
        except TimeoutError as exc:  # socket.timeout: the connection stays usable
            self._forget(req_ids)
            raise TimeoutError_(f"no reply to {cmd} within {timeout_s:g} s") from exc
        except (OSError, ConnectionClosedError) as exc:
            err = (
                exc
                if isinstance(exc, FlashQError)
                else ConnectionClosedError(f"connection lost: {exc}")
            )
            for index, reply in self._lose(err):
                results[index] = reply
        except BaseException:  # KeyboardInterrupt mid-read: later replies are dropped
            self._forget(req_ids)
            raise
        return results  # type: ignore[return-value]

    def _lose(self, err: FlashQError) -> list[tuple[int, Reply]]:
        lost = self._session.connection_lost(err)
        try:
            self._sock.close()
        except OSError:  # pragma: no cover - already gone
            pass
        return lost

    def _forget(self, req_ids: list[str]) -> None:
        for req_id in req_ids:
            self._session.forget(req_id)

    def close(self) -> None:
        self._closed = True
        self._lose(ClientClosedError("connection closed by the client"))
