"""The adaptive limit of requests in flight (AIMD): throttles shrink it, answers grow it back."""

from __future__ import annotations

import asyncio
import random

import pytest

from sitewise_edge.publish.concurrency import AdaptiveLimit


def test_throttles_shrink_the_limit_and_answers_grow_it_back() -> None:
    limit = AdaptiveLimit(8)
    assert limit.allowed == 8
    for _ in range(5):
        limit.on_answer(throttled=True, in_flight=8)
    assert limit.limit == pytest.approx(8 * 0.9**5) and limit.allowed == 4
    for _ in range(40):  # a storm: down to the minimum, never below
        limit.on_answer(throttled=True, in_flight=1)
    assert limit.allowed == 1
    limit.on_answer(throttled=False, in_flight=0)  # an answer while the limit is not used: no growth
    assert limit.allowed == 1
    for _ in range(20):
        limit.on_answer(throttled=False, in_flight=limit.allowed)
    assert limit.allowed == 8  # +1 per answer, up to the maximum


@pytest.mark.parametrize(("share", "floor"), [(0.1, 8), (0.3, 7), (0.5, 5)], ids=["10%", "30%", "50%"])
def test_random_throttles_leave_the_limit_near_the_top(share: float, floor: int) -> None:
    """A share of requests throttled at random (not because of our rate) does not collapse the limit."""
    rng = random.Random(3)
    limit = AdaptiveLimit(8)
    seen = []
    for _ in range(5000):
        limit.on_answer(rng.random() < share, in_flight=limit.allowed)
        seen.append(limit.allowed)
    assert sum(seen) / len(seen) >= floor - 0.5


async def test_requests_wait_for_a_slot_and_a_cancelled_one_leaves_the_limit_alone() -> None:
    limit = AdaptiveLimit(2)
    order: list[str] = []
    gate = asyncio.Event()

    async def request(name: str, throttled: bool = False) -> None:
        async with limit.slot() as slot:
            order.append(name)
            await gate.wait()
            if throttled:
                slot.throttled()

    tasks = [asyncio.create_task(request("a", throttled=True)), asyncio.create_task(request("b")),
             asyncio.create_task(request("c"))]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert order == ["a", "b"] and limit.in_flight == 2  # c waits for a slot
    gate.set()
    await asyncio.gather(*tasks)
    assert order == ["a", "b", "c"] and limit.in_flight == 0 and limit.in_flight_max == 2
    # a: throttled (x 0.9); b, c: answers while the limit was used (+1 each, capped at 2)
    assert limit.limit == 2.0
    gate.clear()
    before = limit.limit
    t = asyncio.create_task(request("d"))
    await asyncio.sleep(0)
    t.cancel()
    with pytest.raises(asyncio.CancelledError):
        await t
    assert limit.in_flight == 0 and limit.limit == before
