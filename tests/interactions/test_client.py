"""The HTTP client against the real loopback fake upstream: retries, resume, continuation."""

import email.utils
import time

import httpx
import pytest

from conversations.interactions import (
    API_REVISION,
    Assembler,
    BadRequestError,
    ConnectionFailed,
    ErrorEvent,
    InteractionsClient,
    NotFoundError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    StreamInterrupted,
)
from devtools.fake_upstream import Transcript
from devtools.fake_upstream import transcripts as tr

FAST = RetryPolicy(max_retries=3, base=0.001, cap=0.01)
BODY = {"model": "gemini-3.5-flash", "input": "hello there"}


@pytest.fixture
async def client(fake_upstream):
    async with InteractionsClient(fake_upstream.api_key, base_url=fake_upstream.base_url,
                                  retry=FAST, max_resumes=3) as c:
        yield c


async def collect(events) -> list[dict]:
    return [e.to_dict() async for e in events]


def only_record(fake):
    (record,) = fake.interactions.values()
    return record


def long_reply(n: int = 30) -> Transcript:
    return tr.reply("", model="m", deltas=n)


# ---------------------------------------------------------------------- basics


async def test_it_streams_an_echo_reply(client, fake_upstream):
    asm = Assembler()
    async for event in client.stream(BODY):
        asm.feed(event)
    assert asm.steps == [{"type": "model_output",
                          "content": [{"type": "text", "text": "Echo: hello there"}]}]
    assert asm.status == "completed" and asm.finished
    (req,) = fake_upstream.requests
    assert req.json == {**BODY, "stream": True}
    assert req.headers["accept"] == "text/event-stream"


async def test_every_request_carries_the_revision_and_the_key(client, fake_upstream):
    created = await client.create(BODY)
    await client.get(created.id, include_input=True)
    await collect(client.get_stream(created.id))
    await collect(client.stream(BODY))
    background = await client.create({**BODY, "background": True})
    await client.cancel(background.id)
    await client.delete(created.id)
    assert len(fake_upstream.requests) == 7
    for req in fake_upstream.requests:
        assert req.headers["api-revision"] == API_REVISION
        assert req.headers["x-goog-api-key"] == fake_upstream.api_key
        assert req.headers["content-type"] == "application/json"


async def test_it_uses_the_version_segment_and_query_parameters(fake_upstream):
    async with InteractionsClient(fake_upstream.api_key, base_url=fake_upstream.base_url + "/",
                                  api_version="v1alpha") as c:
        created = await c.create(BODY)
        got = await c.get(created.id, include_input=True)
    post, get = fake_upstream.requests
    assert post.path == "/v1alpha/interactions"
    assert get.query == {"stream": "false", "include_input": "true"}
    assert got.raw["input"] == "hello there"
    assert got.steps[0].type == "user_input"  # GET returns the timeline
    assert created.output_text == got.output_text == "Echo: hello there"


async def test_it_gets_cancels_and_deletes(client, fake_upstream):
    run = await client.create({**BODY, "background": True})
    assert run.status == "in_progress"
    cancelled = await client.cancel(run.id)
    assert cancelled.status == "cancelled"
    await client.delete(run.id)
    with pytest.raises(NotFoundError) as caught:
        await client.get(run.id)
    assert caught.value.status_code == 404 and not caught.value.retryable


async def test_it_raises_a_typed_error_with_googles_body(client, fake_upstream):
    with pytest.raises(BadRequestError) as caught:
        await client.create({"input": "no model"})
    err = caught.value
    assert (err.status_code, err.code, err.status) == (400, 400, "INVALID_ARGUMENT")
    assert "model" in err.message and "HTTP 400" in str(err)
    assert err.body["error"]["message"] == err.message.split(": ", 1)[1]
    assert err.to_dict() == {"code": 400, "message": err.message, "retryable": False}
    assert len(fake_upstream.requests) == 1  # a 400 is not retried


# ---------------------------------------------------------------------- retries


async def test_it_retries_429_honouring_retry_after(client, fake_upstream):
    fake_upstream.fault(429, times=2, retry_after="0.15")
    started = time.monotonic()
    events = await collect(client.stream(BODY))
    assert time.monotonic() - started >= 0.3
    assert events[-1]["event_type"] == "interaction.completed"
    assert [r.method for r in fake_upstream.requests] == ["POST"] * 3
    assert len(fake_upstream.interactions) == 1  # the generation ran once


async def test_it_honours_a_retry_after_http_date(client, fake_upstream):
    fake_upstream.fault(503, retry_after=email.utils.formatdate(time.time() + 1, usegmt=True))
    created = await client.create(BODY)
    assert created.status == "completed"
    first, second = fake_upstream.requests
    assert 0 < second.time - first.time <= 1.5


@pytest.mark.parametrize("status", [500, 503, 408, 409])
async def test_it_retries_retryable_statuses(client, fake_upstream, status):
    fake_upstream.fault(status, times=2, retry_after=None)
    created = await client.create(BODY)
    assert created.output_text == "Echo: hello there"
    assert len(fake_upstream.requests) == 3


async def test_it_gives_up_after_max_retries(client, fake_upstream):
    fake_upstream.fault(503, times=None, retry_after=None)
    with pytest.raises(ServerError) as caught:
        await collect(client.stream(BODY))
    assert caught.value.retryable and caught.value.status_code == 503
    assert len(fake_upstream.requests) == 1 + FAST.max_retries
    assert not fake_upstream.interactions


async def test_it_does_not_wait_for_an_absurd_retry_after(fake_upstream):
    fake_upstream.fault(429, retry_after="3600")
    async with InteractionsClient(fake_upstream.api_key, base_url=fake_upstream.base_url) as c:
        with pytest.raises(RateLimitError) as caught:
            await c.create(BODY)
    assert caught.value.retry_after == 3600
    assert caught.value.to_dict()["retryable"] is True


async def test_it_retries_connection_errors_then_fails_clearly():
    async with InteractionsClient("k", base_url="http://127.0.0.1:9", retry=FAST) as c:
        with pytest.raises(ConnectionFailed) as caught:
            await c.create(BODY)
    assert "Could not reach the Gemini API" in str(caught.value)
    assert caught.value.retryable


# ---------------------------------------------------------------------- resume


async def test_it_resumes_a_dropped_stream_exactly_once(client, fake_upstream):
    fake_upstream.script(long_reply(30))
    fake_upstream.fault("drop", after=12)
    events = await collect(client.stream(BODY))
    record = only_record(fake_upstream)
    assert events == record.events
    post, get = fake_upstream.requests
    assert (get.method, get.query) == ("GET", {"stream": "true",
                                               "last_event_id": events[11]["event_id"]})
    assert get.path.endswith(f"/interactions/{record.id}")


async def test_it_skips_replayed_events_that_have_no_id(client, fake_upstream):
    # created, status_update (id), step.start (no id): the replay repeats the step.start.
    fake_upstream.script(long_reply(10))
    fake_upstream.fault("drop", after=3)
    events = await collect(client.stream(BODY))
    assert events == only_record(fake_upstream).events
    assert [e["event_type"] for e in events].count("step.start") == 1


async def test_it_replays_from_the_start_when_no_id_was_seen(client, fake_upstream):
    events = long_reply(6).events
    for event in events:
        event.pop("event_id", None)
    events[-1]["event_id"] = "only"  # the fake then ids only this one
    fake_upstream.script(events)
    fake_upstream.fault("drop", after=5)
    got = await collect(client.stream(BODY))
    assert got == only_record(fake_upstream).events
    assert "last_event_id" not in fake_upstream.requests[1].query


async def test_it_survives_several_drops(client, fake_upstream):
    fake_upstream.script(long_reply(40))
    fake_upstream.fault("drop", after=7, times=4)
    events = await collect(client.stream(BODY))
    assert events == only_record(fake_upstream).events
    assert len(fake_upstream.requests) == 5


async def test_it_resumes_after_a_malformed_line(client, fake_upstream):
    fake_upstream.script(long_reply(20))
    fake_upstream.fault("malformed", after=8)
    events = await collect(client.stream(BODY))
    assert events == only_record(fake_upstream).events
    assert [r.method for r in fake_upstream.requests] == ["POST", "GET"]


async def test_it_resumes_a_stream_that_went_silent(fake_upstream):
    async with InteractionsClient(fake_upstream.api_key, base_url=fake_upstream.base_url,
                                  retry=FAST) as c:
        created = await c.create(BODY)
    fake_upstream.fault("slow", delay=1.0, method="GET")
    quick = httpx.Timeout(connect=2, read=0.3, write=2, pool=2)
    async with InteractionsClient(fake_upstream.api_key, base_url=fake_upstream.base_url,
                                  retry=FAST, timeout=quick) as c:
        events = await collect(c.get_stream(created.id))
    assert events == fake_upstream.interactions[created.id].events
    assert len(fake_upstream.find_requests("GET")) == 2


async def test_it_cannot_resume_before_the_interaction_has_an_id(fake_upstream):
    fake_upstream.fault("slow", delay=1.0)
    quick = httpx.Timeout(connect=2, read=0.3, write=2, pool=2)
    async with InteractionsClient(fake_upstream.api_key, base_url=fake_upstream.base_url,
                                  retry=FAST, timeout=quick) as c:
        with pytest.raises(StreamInterrupted, match="before the interaction had an id") as caught:
            await collect(c.stream(BODY))
    assert caught.value.retryable
    assert len(fake_upstream.requests) == 1  # a started generation is never re-sent


async def test_it_cannot_resume_an_unstored_interaction(client, fake_upstream):
    fake_upstream.script(long_reply(10))
    fake_upstream.fault("drop", after=5)
    seen = []
    with pytest.raises(StreamInterrupted, match="store=false") as caught:
        async for event in client.stream({**BODY, "store": False}):
            seen.append(event)
    assert len(seen) == 5
    assert caught.value.interaction_id and caught.value.last_event_id


async def test_it_bounds_resume_attempts(client, fake_upstream):
    fake_upstream.script(long_reply(10))
    fake_upstream.fault("drop", after=4, method="POST")
    fake_upstream.fault("drop", after=0, method="GET", times=None)
    with pytest.raises(StreamInterrupted, match="gave up after 3 resumes"):
        await collect(client.stream(BODY))
    assert len(fake_upstream.find_requests("GET")) == 3


async def test_it_treats_eof_without_completion_as_a_drop(client, fake_upstream):
    fake_upstream.script(long_reply(3).events[:-1])  # no interaction.completed, clean EOF
    with pytest.raises(StreamInterrupted, match="ended before interaction.completed"):
        await collect(client.stream(BODY))


async def test_it_ends_at_done_without_resuming(client, fake_upstream):
    fake_upstream.script(Transcript("t", long_reply(3).events[:-1], done_marker=True))
    events = await collect(client.stream(BODY))
    assert events[-1]["event_type"] == "step.stop"
    assert len(fake_upstream.requests) == 1


async def test_it_stops_at_completed_even_with_a_done_marker(client, fake_upstream):
    fake_upstream.configure(done_marker=True)
    events = await collect(client.stream(BODY))
    assert events[-1]["event_type"] == "interaction.completed"


async def test_get_stream_resumes_after_a_given_event(client, fake_upstream):
    created = await client.create(BODY)
    events = fake_upstream.interactions[created.id].events
    mark = next(e["event_id"] for e in events if e["event_type"] == "step.delta")
    rest = await collect(client.get_stream(created.id, last_event_id=mark))
    assert rest == events[[e.get("event_id") for e in events].index(mark) + 1:]


# ---------------------------------------------------------------------- in-band errors


async def test_it_yields_error_events_without_raising(client, fake_upstream):
    fake_upstream.script("error_event")
    asm = Assembler()
    kinds = []
    async for event in client.stream(BODY):
        asm.feed(event)
        kinds.append(type(event))
    assert kinds[-1] is ErrorEvent
    assert asm.error and asm.status == "failed"
    assert len(fake_upstream.requests) == 1  # an error event is an end, not a drop


# ---------------------------------------------------------------------- continuation


async def test_it_follows_continuation_hops_in_one_stream(client, fake_upstream):
    fake_upstream.script("continuation")
    asm = Assembler()
    async for event in client.stream(BODY):
        asm.feed(event)
    hop1, hop2 = fake_upstream.requests
    assert "input" not in hop2.json
    assert hop2.json["previous_interaction_id"] == asm.interaction_ids[0]
    assert hop2.json["continuation_token"].startswith("ct_")
    assert hop2.json["stream"] is True
    assert [s["content"][0]["text"] for s in asm.steps] == ["Part one. ", "Part two."]
    assert asm.usage["total_input_tokens"] == 25 and asm.usage["initial_input_tokens"] == 10
    assert asm.finished and asm.interaction_id == asm.interaction_ids[1]


async def test_it_resends_the_input_when_not_stored(client, fake_upstream):
    fake_upstream.script("continuation")
    await collect(client.stream({**BODY, "store": False}))
    hop2 = fake_upstream.requests[1].json
    assert hop2["input"] == "hello there" and hop2["store"] is False
    assert "previous_interaction_id" not in hop2


async def test_it_merges_unary_continuation_hops(client, fake_upstream):
    fake_upstream.script("continuation")
    merged = await client.create(BODY)
    assert merged.output_text == "Part one. Part two."
    assert merged.usage["total_input_tokens"] == 25
    assert merged.continuation_ids == list(fake_upstream.interactions)
    assert merged.id == merged.continuation_ids[-1]
    assert "stream" not in fake_upstream.requests[0].json


async def test_it_does_not_continue_background_runs(client, fake_upstream):
    fake_upstream.script("continuation")
    await collect(client.stream({**BODY, "background": True}))
    assert len(fake_upstream.requests) == 1


async def test_it_passes_unknown_events_through(client, fake_upstream):
    fake_upstream.script("unknown_types")
    asm = Assembler()
    kinds = []
    async for event in client.stream(BODY):
        asm.feed(event)
        kinds.append(event.event_type)
    assert "interaction.heartbeat" in kinds
    assert asm.unknown_events[0]["event_type"] == "interaction.heartbeat"
    assert asm.steps[0]["type"] == "hologram_call"
    assert asm.steps[1]["content"][0]["type"] == "hologram"


async def test_it_resumes_a_dropped_continuation_hop(client, fake_upstream):
    (hop1,) = tr.load("continuation_hop1")
    fake_upstream.script(hop1, long_reply(20))
    fake_upstream.fault("drop", after=10, times=2)  # hop 1 ends first; hop 2 drops
    asm, events = Assembler(), []
    async for event in client.stream(BODY):
        asm.feed(event)
        events.append(event.to_dict())
    first, second = (fake_upstream.interactions[i] for i in asm.interaction_ids)
    assert events == first.events + second.events
    assert [r.method for r in fake_upstream.requests] == ["POST", "POST", "GET"]
    assert asm.steps[0]["content"][0]["text"] == "Part one. "
    assert asm.finished
