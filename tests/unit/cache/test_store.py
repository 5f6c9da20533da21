"""The in-process cache (cache/store.py): entries expire with their TTL, the least recently used go first once
the bytes pass the bound, and an answer larger than the bound is not kept."""

from __future__ import annotations

import asyncio

from llmgate.cache.store import Answer, MemoryStore, Usage, decode_answer, encode_answer


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def answer(size: int) -> Answer:
    return Answer([(b"content-type", b"application/json")], b"x" * size)


def test_an_entry_is_served_until_its_ttl_passes() -> None:
    clock = Clock()
    store = MemoryStore(10_000, clock)
    kept = answer(10)
    asyncio.run(store.put("k", kept, 5.0))
    clock.now = 4.9
    assert asyncio.run(store.get("k")) == kept
    clock.now = 5.0
    assert asyncio.run(store.get("k")) is None and store.held_bytes == 0 and len(store) == 0


def test_the_least_recently_used_go_first_once_the_bytes_pass_the_bound() -> None:
    size = answer(100).size
    store = MemoryStore(3 * size)

    async def scenario() -> list[str]:
        for key in "abc":
            await store.put(key, answer(100), 60)
        await store.get("a")  # a is now the most recently used
        await store.put("d", answer(100), 60)
        return [key for key in "abcd" if await store.get(key) is not None]

    assert asyncio.run(scenario()) == ["a", "c", "d"]
    assert store.held_bytes == 3 * size


def test_an_answer_larger_than_the_bound_is_not_kept_and_a_new_one_replaces_the_old() -> None:
    store = MemoryStore(2048)
    asyncio.run(store.put("big", answer(4096), 60))
    assert asyncio.run(store.get("big")) is None and store.held_bytes == 0
    asyncio.run(store.put("k", answer(10), 60))
    asyncio.run(store.put("k", answer(20), 60))
    assert store.held_bytes == answer(20).size and len(store) == 1


def test_an_answer_survives_its_encoding_for_redis() -> None:
    kept = Answer([(b"content-type", b"text/event-stream")], b"data: [DONE]\n\n", "openai/gpt-4o",
                  Usage(3, 4, 7, None))
    assert decode_answer(encode_answer(kept)) == kept
