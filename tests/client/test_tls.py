"""TLS: every client kind talks to a TLS-wrapped fake server with a freshly made certificate."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from flashq.client import BlockingClient, ConnectError, FlashQ
from tests.client.fake_server import FakeServer
from tests.client.helpers import RUNTIMES, run


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl CLI)."""
    d = tmp_path_factory.mktemp("tls")
    key, crt = d / "key.pem", d / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(crt), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return key, crt


@pytest.fixture
def tls_server(cert: tuple[Path, Path]) -> Iterator[FakeServer]:
    key, crt = cert
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(crt, key)
    with FakeServer(tls=server_ctx) as srv:
        yield srv


def _client_ctx(crt: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(crt))


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_async_client_over_tls(runtime: str, tls_server: FakeServer, cert: tuple[Path, Path]):
    async def main() -> None:
        async with FlashQ(port=tls_server.port, ssl_context=_client_ctx(cert[1])) as client:
            await client.ping()
            assert await client.push("q", {"secret": True}) == 1

    run(runtime, main)


def test_blocking_client_over_tls(tls_server: FakeServer, cert: tuple[Path, Path]):
    with BlockingClient(port=tls_server.port, ssl_context=_client_ctx(cert[1])) as client:
        client.ping()
        assert client.push_batch("q", [1, 2]) == [1, 2]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_untrusted_certificate_fails_connect(runtime: str, tls_server: FakeServer):
    async def main() -> None:
        client = FlashQ(port=tls_server.port, ssl_context=ssl.create_default_context())
        with pytest.raises(ConnectError):
            await client.connect()

    run(runtime, main)
