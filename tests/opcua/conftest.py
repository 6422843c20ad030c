"""Real asyncua servers (the plant simulator) on free ports, shared per module where safe.

Starting an asyncua ``Server`` takes about 1.2 s (it builds the standard address space) and
stopping one about 1 s, so the read-only tests share one plain and one secured server; only
the tests that stop a server start their own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from sitewise_edge.simulators.opcua import OpcUaSimulator, generate_certificate

CLIENT_APP_URI = "urn:sitewise-edge:test-client"
USERS = {"operator": "s3cret"}


@pytest.fixture(scope="module", autouse=True)
def quiet_asyncua() -> Iterator[None]:
    """asyncua logs tracebacks for expected events (a server going away); keep failures readable."""
    log = logging.getLogger("asyncua")
    level = log.level
    log.setLevel(logging.CRITICAL)
    yield
    log.setLevel(level)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sim() -> AsyncIterator[OpcUaSimulator]:
    simulator = OpcUaSimulator(port=0, update_interval=0.2)
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def secure_sim() -> AsyncIterator[OpcUaSimulator]:
    """Offers Basic256Sha256 Sign and SignAndEncrypt only (no None endpoint)."""
    simulator = OpcUaSimulator(port=0, update_interval=0.2, security=True, allow_none=False, users=USERS)
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture(scope="module")
def client_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("opcua-client-pki")
    cert, key = folder / "client-cert.der", folder / "client-key.pem"
    generate_certificate(cert, key, "sitewise-edge test client", CLIENT_APP_URI)
    return cert, key


class FreezingProxy:
    """A TCP proxy that can stop forwarding without closing: a server that hangs, as seen by a client."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.frozen = asyncio.Event()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def drop(self) -> None:
        """Close every connection (both sides), as a network blip does; new connections go through."""
        for writer in self._writers:
            writer.close()
        self._writers = []

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers += [client_w, server_w]
        await asyncio.gather(self._pipe(client_r, server_w), self._pipe(server_r, client_w))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if self.frozen.is_set():
                    continue  # swallow: the peer waits for an answer that never comes
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass  # dropped
        writer.close()


@pytest_asyncio.fixture(loop_scope="module")
async def frozen_proxy(sim: OpcUaSimulator) -> AsyncIterator[FreezingProxy]:
    proxy = FreezingProxy(sim.port)
    await proxy.start()
    yield proxy
    await proxy.stop()
