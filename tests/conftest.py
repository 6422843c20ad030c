"""Shared fixtures: gateways run in-process on free ports on 127.0.0.1."""

from __future__ import annotations

import asyncio
import inspect
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import pytest
import pytest_asyncio
from hypothesis import settings

from sitewise_edge.config import Config, parse_config
from sitewise_edge.runtime import Gateway

# property-based tests run the same examples on every machine: CI must not turn red at random
settings.register_profile("repo", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("repo")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ended(proc: subprocess.Popen[str], timeout: float = 10.0) -> int | None:
    """Wait for a child process to end (killed past ``timeout``), close its pipes; its exit status, None when it
    had to be killed."""
    status: int | None
    try:
        status = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        status = None
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()
    return status


def sitewise_client(port: int) -> Any:
    """A plain boto3 iotsitewise client pointed at a local gateway, as a user's script would make it."""
    return boto3.client(
        "iotsitewise",
        region_name="us-east-1",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=botocore.config.Config(inject_host_prefix=False, retries={"max_attempts": 1}),
    )


def gateway_config(tmp_path: Path, **sections: Any) -> Config:
    data: dict[str, Any] = {
        "gateway": {"name": "test", "data_dir": str(tmp_path / "data")},
        "api": {"host": "127.0.0.1", "port": 0},
        "models": [{"path": str(EXAMPLES / "models")}],
        "storage": {"compact_interval": "1h"},
    }
    data.update(sections)
    return parse_config(data, env={})


async def eventually(predicate: Callable[[], Any], within: float = 15.0) -> Any:
    """Wait for a condition that has no event of its own (another process's or gateway's state), with a deadline."""
    deadline = time.monotonic() + within
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(0.05)


@pytest.fixture
async def start_gateway() -> AsyncIterator[Callable[[Config], Any]]:
    """Start gateways from configs; all are stopped at the end of the test."""
    async for start in gateway_starter():
        yield start


async def gateway_starter() -> AsyncIterator[Callable[[Config], Any]]:
    """The body of ``start_gateway``, for modules that run their tests on a module-wide loop."""
    started: list[Gateway] = []

    async def start(cfg: Config) -> Gateway:
        gw = Gateway(cfg)
        await gw.start()
        started.append(gw)
        return gw

    yield start
    for gw in reversed(started):
        await gw.stop()


def _loop_scope(node: pytest.Item) -> str | None:
    """The loop scope of an async test, None for a plain one."""
    if not isinstance(node, pytest.Function) or not inspect.iscoroutinefunction(node.obj):
        return None
    marker = node.get_closest_marker("asyncio")
    return str(marker.kwargs.get("loop_scope", "function")) if marker else "function"


def _server_side(task: asyncio.Task[Any]) -> bool:
    """A session task of a shared asyncua server: it ends at the session's own timeout (the server outlives the
    test that dropped its connection), and the server's stop ends it."""
    code = getattr(task.get_coro(), "cr_code", None)
    return code is not None and "/asyncua/server/" in code.co_filename


HANG_REPORT_AFTER = 280.0
"""Shortly before pytest-timeout (300 s, pyproject) fails a hung test with its threads' stacks: the event loop's
tasks, where a hang in async code is (the thread stacks show only the loop waiting in select)."""


def _print_tasks() -> None:
    print(f"+++ a test has run {HANG_REPORT_AFTER:.0f} s: the stacks of its loop's tasks +++", file=sys.stderr)
    for task in asyncio.all_tasks():
        print(f"task {task.get_name()}:", file=sys.stderr)
        coro: Any = task.get_coro()
        while coro is not None:  # the chain of awaits, innermost last (Task.print_stack shows only the outermost)
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
            if frame is not None:
                print(f"  {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}", file=sys.stderr)
            coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)


async def _check_tasks() -> AsyncIterator[None]:
    """Around a test, in its loop: fail when it leaves tasks running (servers and clients must be closed).
    Tasks still finishing their close get a second, waited on, not slept."""
    before = asyncio.all_tasks()
    report = asyncio.get_running_loop().call_later(HANG_REPORT_AFTER, _print_tasks)
    try:
        yield
    finally:
        report.cancel()
    current = asyncio.current_task()
    leaked = [t for t in asyncio.all_tasks() - before if t is not current and not t.done() and not _server_side(t)]
    if leaked:
        _, pending = await asyncio.wait(leaked, timeout=1.0)
        assert not pending, f"tasks left running: {sorted(t.get_name() for t in pending)}"


@pytest_asyncio.fixture(autouse=True)
async def _no_leaked_tasks(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Every async test on its own loop is checked for leaked tasks (module loops: the fixture below)."""
    if _loop_scope(request.node) != "function":
        yield
        return
    async for _ in _check_tasks():
        yield


_leaked_tasks_module_loop = pytest_asyncio.fixture(_check_tasks, loop_scope="module", name="_leaked_tasks_module_loop")


@pytest.fixture(autouse=True)
def _no_leaked_tasks_on_module_loops(request: pytest.FixtureRequest) -> None:
    """Async tests on their module's loop get the same check, run in that loop."""
    scope = _loop_scope(request.node)
    if scope not in (None, "function", "module"):
        raise AssertionError(f"no leak check for loop_scope={scope!r}: add one in tests/conftest.py")
    if scope == "module":
        request.getfixturevalue("_leaked_tasks_module_loop")


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Any:
    """Fail a test that leaves non-daemon threads running (a leaked server or client)."""
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon
              and not t.name.startswith(("asyncio_", "ThreadPoolExecutor"))]
    assert not leaked, f"threads left running: {leaked}"
