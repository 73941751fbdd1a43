"""The async transports (Trio and asyncio) against a scripted fake server on real sockets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flashq.client import ClientClosedError, ConnectError, FlashQ
from flashq.errors import (
    AuthenticationError,
    ConnectionClosedError,
    NotFoundError,
    TimeoutError_,
)
from tests.client.fake_server import FakeServer
from tests.client.helpers import RUNTIMES, gather, run, wait_until


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    with FakeServer() as srv:
        yield srv


@pytest.fixture(params=RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_pipelined_calls_are_matched_by_req_id_out_of_order(runtime: str, fake: FakeServer):
    # Given a server answering each burst of requests in reverse order,
    fake.reverse = True

    async def main() -> None:
        async with FlashQ(port=fake.port) as client:
            # when 50 calls are in flight on one connection,
            replies = await gather(*(client.call("ECHO", n=i) for i in range(50)))
        # then each call still gets its own reply, and one connection carried them all.
        assert [r["echo"]["n"] for r in replies] == list(range(50))
        assert fake.accepted == 1

    run(runtime, main)


def test_error_reply_raises_the_mapped_error(runtime: str, fake: FakeServer):
    async def main() -> None:
        async with FlashQ(port=fake.port) as client:
            with pytest.raises(NotFoundError, match="Job 5 not found"):
                await client.call("ERR", text="Job 5 not found")
            await client.ping()  # the connection is still fine

    run(runtime, main)


def test_timeout_forgets_the_request_and_keeps_the_connection(runtime: str, fake: FakeServer):
    async def main() -> None:
        async with FlashQ(port=fake.port, request_timeout_s=0.1) as client:
            with pytest.raises(TimeoutError_, match="HANG"):
                await client.call("HANG")
            await client.ping()
        assert fake.accepted == 1

    run(runtime, main)


def test_drop_fails_calls_in_flight_then_next_call_reconnects(runtime: str, fake: FakeServer):
    async def main() -> None:
        async with FlashQ(port=fake.port, request_timeout_s=30) as client:
            await client.ping()

            async def hang() -> BaseException | None:
                try:
                    await client.call("HANG")
                except ConnectionClosedError as exc:
                    return exc
                return None

            async def drop() -> None:
                await wait_until(lambda: any(r.get("cmd") == "HANG" for r in fake.requests))
                fake.drop_connections()

            # A call in flight when the connection dies fails at once, well before its timeout,
            exc, _ = await gather(hang(), drop())
            assert isinstance(exc, ConnectionClosedError)
            # and the next call opens a new connection.
            await client.ping()
            assert fake.accepted == 2

    run(runtime, main)


def test_server_restart_is_survived(runtime: str, fake: FakeServer):
    async def main() -> None:
        async with FlashQ(port=fake.port) as client:
            assert await client.push("q", {"n": 1}) == 1
            # The server goes away; the idle client notices while its event loop runs,
            fake.stop()
            await wait_until(lambda: client._pool is not None and client._pool.idle_closed())
            fake.start()  # back on the same port
            # and the next call reconnects transparently.
            assert await client.push("q", {"n": 2}) == 2
            assert fake.accepted == 2

    run(runtime, main)


def test_server_down_raises_connect_error_after_the_reconnect_budget(runtime: str):
    srv = FakeServer().start()
    port = srv.port
    srv.stop()

    async def main() -> None:
        client = FlashQ(port=port, reconnect_timeout_s=0.2, reconnect_delay_s=0.01)
        with pytest.raises(ConnectError):
            await client.ping()
        with pytest.raises(OSError):  # ConnectError is an OSError too
            await client.connect()
        await client.close()

    run(runtime, main)


def test_close_fails_calls_in_flight_and_later_calls(runtime: str, fake: FakeServer):
    async def main() -> None:
        client = FlashQ(port=fake.port)
        await client.connect()

        async def hang() -> BaseException | None:
            try:
                await client.call("HANG")
            except ClientClosedError as exc:
                return exc
            return None

        async def close() -> None:
            await wait_until(lambda: any(r.get("cmd") == "HANG" for r in fake.requests))
            await client.close()

        exc, _ = await gather(hang(), close())
        assert isinstance(exc, ClientClosedError)
        with pytest.raises(ClientClosedError):
            await client.ping()

    run(runtime, main)


def test_auth_is_sent_first_and_a_bad_token_fails_connect(runtime: str):
    async def main(port: int) -> None:
        async with FlashQ(port=port, token="s3cret") as client:
            await client.ping()
        with pytest.raises(AuthenticationError):
            await FlashQ(port=port, token="wrong").connect()

    with FakeServer(token="s3cret") as srv:
        run(runtime, lambda: main(srv.port))
        assert srv.requests[0] == {"cmd": "AUTH", "token": "s3cret"}  # reqId popped


def test_binary_mode_speaks_msgpack(runtime: str, fake: FakeServer):
    async def main() -> None:
        async with FlashQ(port=fake.port, binary=True) as client:
            reply = await client.call("ECHO", data={"k": [1, 2.5, None, "é"]})
        assert reply["echo"]["data"] == {"k": [1, 2.5, None, "é"]}

    run(runtime, main)


def test_push_batch_sends_pushb_chunks_of_1000_pipelined(runtime: str, fake: FakeServer):
    async def main() -> None:
        async with FlashQ(port=fake.port) as client:
            ids = await client.push_batch("q", [{"n": i} for i in range(2500)])
        assert ids == list(range(1, 2501))
        sizes = [len(r["jobs"]) for r in fake.requests if r["cmd"] == "PUSHB"]
        assert sizes == [1000, 1000, 500]

    run(runtime, main)


def test_pool_spreads_calls_over_its_connections(runtime: str, fake: FakeServer):
    async def main() -> None:
        async with FlashQ(port=fake.port, pool_size=3) as client:
            await gather(*(client.ping() for _ in range(9)))
        assert fake.accepted == 3

    run(runtime, main)


def test_request_larger_than_a_frame_is_refused_locally(runtime: str, fake: FakeServer):
    from flashq.errors import ValidationError

    async def main() -> None:
        async with FlashQ(port=fake.port) as client:
            with pytest.raises(ValidationError, match="too large"):
                await client.push("q", "x" * (17 * 1024 * 1024))
            await client.ping()  # nothing was sent, the connection is intact

    run(runtime, main)
