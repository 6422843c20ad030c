"""The API's listening socket (issue 9, item 9): accepted connections have TCP_NODELAY.

Without it a response written in two parts (headers, body) waits for the client's delayed ACK: 44 ms per
GetAssetPropertyValue for a single client (22 requests/s). The latency itself is measured in
benchmarks/hostile.py; this checks the mechanism on the server side of a real connection.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import gateway_config


async def test_accepted_connections_have_tcp_nodelay(tmp_path: Path, start_gateway: Any) -> None:
    gw = await start_gateway(gateway_config(tmp_path))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http:
        assert (await http.get("/health")).status_code == 200  # the connection stays open (keep-alive)
        connections = list(gw._server.server_state.connections)
        assert connections
        for protocol in connections:
            sock = protocol.transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
