"""A SiteWise-compatible ``BatchPutAssetPropertyValue`` endpoint on 127.0.0.1 that injects faults.

    ep = FaultEndpoint()
    await ep.start()                       # ep.url for the publisher's endpoint_url (or: async with ep)
    ep.fail_next(20, 429, "ThrottlingException")
    ep.reject["/bad/alias"] = "ResourceNotFoundException"   # per-entry errorEntries, until removed
    ep.flaky["/flaky"] = 2                 # InternalFailureException for the next 2 entries of it
    ep.random_faults = [(0.3, 429, "ThrottlingException"), (0.1, 503, "ServiceUnavailableException")]
    await ep.down(); await ep.up()         # the port refuses connections, then listens again
    await ep.wait_for(lambda: ep.distinct() == 1000, within=10)
    await ep.stop()

It runs uvicorn in the test's event loop and imitates the real service: a request is validated
(≤10 entries × ≤10 values), values of good entries are stored (``received``: every value as it
arrived, duplicates included), failing entries are listed in ``errorEntries`` with their
timestamps, whole-request faults answer SiteWise's error shape (``x-amzn-ErrorType``).
``hold_after(n)`` lets the first n requests through and then stores but does not answer the
following ones until ``release()``: requests delivered but never acknowledged, as in a crash.
``random_faults`` fails each request with the given probabilities (a seeded generator, ``seed``);
``in_flight_max`` is the most requests it was answering at once (``in_flight_max = 0`` starts again).

``python -m tests.gateway.fault_endpoint --faults 0.3:429:ThrottlingException --delay 0.03`` runs one in
its own process (benchmarks/forwarding.py does), prints its port, and serves until SIGTERM; it keeps no
values then, only the counts (``GET /counts``).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


@dataclass
class Received:
    at: float  # time.monotonic() when the request arrived
    keys: list[str]  # the property of each entry
    values: int
    status: int = 200
    held: bool = False


@dataclass
class Value:
    key: str
    seconds: int
    nanos: int
    value: Any
    quality: str
    request: int  # index into requests


@dataclass
class FaultEndpoint:
    port: int = 0
    delay: float = 0.0
    reject: dict[str, str] = field(default_factory=dict)
    flaky: dict[str, int] = field(default_factory=dict)
    requests: list[Received] = field(default_factory=list)
    received: list[Value] = field(default_factory=list)
    partial_flags: list[bool] = field(default_factory=list)
    random_faults: list[tuple[float, int, str]] = field(default_factory=list)
    seed: int = 1
    keep: bool = True
    """False: count what arrives (``counts``) but keep no request or value (a long benchmark run)."""

    def __post_init__(self) -> None:
        self._failures: list[tuple[int, str]] = []
        self._hold_after: int | None = None
        self._gate = asyncio.Event()
        self._gate.set()
        self._changed = asyncio.Condition()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.held = 0
        self.rng = random.Random(self.seed)
        self.in_flight = 0
        self.in_flight_max = 0
        self.counts = {"requests": 0, "values": 0, "faults": 0}

    # --- control ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = Starlette(routes=[Route("/properties", self._batch_put, methods=["POST"]),
                                Route("/counts", self._counts, methods=["GET"])])
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(128)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_level="error", lifespan="off", access_log=False,
                                               timeout_graceful_shutdown=2))  # held requests never block a stop
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._server = server
        self._task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        self.release()
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
            self._server = self._task = None

    async def __aenter__(self) -> FaultEndpoint:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def down(self) -> None:
        await self.stop()

    async def up(self) -> None:
        await self.start()

    def fail_next(self, n: int, status: int = 429, code: str = "ThrottlingException") -> None:
        self._failures.append((n, f"{status}:{code}"))

    def hold_after(self, n: int) -> None:
        self._hold_after = n
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    async def wait_for(self, predicate: Callable[[], bool], within: float = 15.0) -> None:
        """Wait until ``predicate()`` holds, re-checked after every request; fail after ``within`` s."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), within)

    # --- what arrived ---------------------------------------------------------------------

    def keys_of(self, key: str) -> list[tuple[int, int]]:
        return [(v.seconds, v.nanos) for v in self.received if v.key == key]

    def distinct(self) -> int:
        return len({(v.key, v.seconds, v.nanos, v.quality) for v in self.received})

    def duplicates(self) -> int:
        return len(self.received) - self.distinct()

    # --- the route ------------------------------------------------------------------------

    async def _counts(self, request: Request) -> JSONResponse:
        return JSONResponse(self.counts | {"inFlightMax": self.in_flight_max})

    def _fault(self) -> tuple[int, str] | None:
        if self._failures:
            n, what = self._failures[0]
            self._failures[0] = (n - 1, what)
            if n - 1 <= 0:
                self._failures.pop(0)
            status, _, code = what.partition(":")
            return int(status), code
        if self.random_faults:
            draw = self.rng.random()
            for p, status, code in self.random_faults:
                if draw < p:
                    return status, code
                draw -= p
        return None

    async def _batch_put(self, request: Request) -> JSONResponse:
        body = await request.json()
        entries = body.get("entries") or []
        index = len(self.requests)
        rec = Received(time.monotonic(), [_key(e) for e in entries],
                       sum(len(e.get("propertyValues", [])) for e in entries))
        if self.keep:
            self.requests.append(rec)
            self.partial_flags.append(bool(body.get("enablePartialEntryProcessing")))
        self.counts["requests"] += 1
        self.in_flight += 1
        self.in_flight_max = max(self.in_flight_max, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            fault = self._fault()
            if fault is not None:
                status, code = fault
                rec.status = status
                self.counts["faults"] += 1
                return JSONResponse({"message": f"injected {code}"}, status_code=status,
                                    headers={"x-amzn-ErrorType": code})
            if len(entries) > 10 or any(len(e.get("propertyValues", [])) > 10 for e in entries):
                rec.status = 400
                return JSONResponse({"message": "too many entries or values"}, status_code=400,
                                    headers={"x-amzn-ErrorType": "InvalidRequestException"})
            errors = []
            for e in entries:
                key = _key(e)
                code = self.reject.get(key)
                if code is None and self.flaky.get(key, 0) > 0:
                    self.flaky[key] -= 1
                    code = "InternalFailureException"
                if code is not None:
                    errors.append({"entryId": e["entryId"], "errors": [{
                        "errorCode": code, "errorMessage": f"injected {code} for {key}",
                        "timestamps": [v["timestamp"] for v in e["propertyValues"]]}]})
                    continue
                self.counts["values"] += len(e["propertyValues"])
                if not self.keep:
                    continue
                for v in e["propertyValues"]:
                    ts = v["timestamp"]
                    self.received.append(Value(key, ts["timeInSeconds"], ts.get("offsetInNanos", 0), v["value"],
                                               v.get("quality", "GOOD"), index))
            if self._hold_after is not None and index >= self._hold_after and not self._gate.is_set():
                rec.held = True
                self.held += 1
                async with self._changed:
                    self._changed.notify_all()
                await self._gate.wait()  # stored, but the answer never reaches a killed client
            return JSONResponse({"errorEntries": errors})
        finally:
            self.in_flight -= 1
            async with self._changed:
                self._changed.notify_all()


def _key(entry: dict[str, Any]) -> str:
    if "propertyAlias" in entry:
        return str(entry["propertyAlias"])
    return f"{entry.get('assetId')}/{entry.get('propertyId')}"


async def _serve(args: argparse.Namespace) -> None:
    faults = []
    for spec in args.faults:
        p, status, code = spec.split(":")
        faults.append((float(p), int(status), code))
    ep = FaultEndpoint(port=args.port, delay=args.delay, random_faults=faults, seed=args.seed, keep=False)
    await ep.start()
    print(ep.port, flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await ep.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="a fault-injecting BatchPut endpoint on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer (a WAN round trip)")
    parser.add_argument("--faults", nargs="*", default=[],
                        help="PROBABILITY:STATUS:CODE, e.g. 0.3:429:ThrottlingException")
    parser.add_argument("--seed", type=int, default=1)
    asyncio.run(_serve(parser.parse_args()))
    sys.exit(0)
