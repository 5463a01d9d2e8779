"""The assembler folds events into the steps of the non-streaming resource, and UI ops."""

import copy
import json
import random

import pytest

from conversations.interactions import Assembler, merge_interactions, merge_usage, parse_event
from devtools.fake_upstream import transcripts

SEED = (transcripts.FIXTURES / "seed_stream.sse").read_text() + "event: done\ndata: [DONE]\n\n"


def sse_to_raw(text: str) -> list[dict]:
    """The JSON payloads of an SSE body (stops at [DONE])."""
    out = []
    for block in text.split("\n\n"):
        data = "\n".join(line[6:] for line in block.splitlines() if line.startswith("data: "))
        if data == "[DONE]":
            break
        if data:
            out.append(json.loads(data))
    return out


def start(i, step, **extra):
    return {"event_type": "step.start", "index": i, "step": step, **extra}


def delta(i, d, **extra):
    return {"event_type": "step.delta", "index": i, "delta": d, **extra}


def stop(i, **extra):
    return {"event_type": "step.stop", "index": i, **extra}


def created(iid="v1_a", status="in_progress"):
    return {"event_type": "interaction.created", "interaction": {"id": iid, "status": status}}


def completed(iid="v1_a", status="completed", **interaction):
    return {"event_type": "interaction.completed",
            "interaction": {"id": iid, "status": status, **interaction}}


def fold(raws) -> Assembler:
    return Assembler().feed_all(parse_event(copy.deepcopy(r)) for r in raws)


def test_it_folds_the_seed_transcript():
    asm = fold(sse_to_raw(SEED))
    assert asm.steps == [
        {"type": "thought", "signature": "EvEFCu4F..."},
        {"type": "model_output", "content": [{"type": "text", "text": "AI works "}]},
    ]
    assert (asm.interaction_id, asm.status, asm.usage) == ("v1_Chd...", "completed",
                                                          {"total_tokens": 197})
    assert asm.finished and asm.error is None


def test_it_starts_from_the_content_step_start_carries():
    asm = fold([
        created(),
        start(0, {"type": "thought", "signature": "",
                  "summary": [{"type": "text", "text": "Plan"}]}),
        stop(0),
        start(1, {"type": "model_output", "content": [{"type": "text", "text": "Hello"}]}),
        delta(1, {"type": "text", "text": ", "}),
        delta(1, {"text": "world"}),  # no type (Deep Research transcripts)
        stop(1),
        completed(),
    ])
    assert asm.steps == [
        {"type": "thought", "signature": "", "summary": [{"type": "text", "text": "Plan"}]},
        {"type": "model_output", "content": [{"type": "text", "text": "Hello, world"}]},
    ]


def test_it_does_not_mutate_the_events_it_was_fed():
    raws = [created(),
            start(0, {"type": "model_output", "content": [{"type": "text", "text": "a"}]}),
            delta(0, {"type": "text", "text": "b"}), stop(0), completed()]
    events = [parse_event(copy.deepcopy(r)) for r in raws]
    Assembler().feed_all(events).steps  # noqa: B018
    assert [e.to_dict() for e in events] == raws


def test_it_joins_argument_fragments_at_step_stop():
    asm = fold([
        created(),
        start(0, {"type": "function_call", "id": "c1", "name": "weather", "arguments": {}}),
        delta(0, {"type": "arguments_delta", "arguments": '{"loc'}),
        delta(0, {"type": "arguments_delta", "arguments": 'ation": "Lon'}),
        delta(0, {"type": "arguments_delta", "arguments": 'don"}'}),
        stop(0),
        start(1, {"type": "function_call", "id": "c2", "name": "old", "arguments": {}}),
        delta(1, {"type": "arguments", "partial_arguments": '{"a": '}),
        delta(1, {"type": "arguments", "partial_arguments": "[1, 2]}"}),
        stop(1),
        completed(status="requires_action"),
    ])
    assert asm.steps == [
        {"type": "function_call", "id": "c1", "name": "weather",
         "arguments": {"location": "London"}},
        {"type": "function_call", "id": "c2", "name": "old", "arguments": {"a": [1, 2]}},
    ]
    assert asm.status == "requires_action"


def test_it_keeps_unparseable_arguments_as_text():
    asm = fold([created(), start(0, {"type": "function_call", "id": "c", "name": "f"}),
                delta(0, {"type": "arguments_delta", "arguments": "{broken"}), completed()])
    assert asm.steps[0]["arguments"] == "{broken"


def test_it_folds_annotations_media_and_tool_deltas():
    cite = {"type": "url_citation", "url": "https://e.x", "start_index": 0, "end_index": 5}
    asm = fold([
        created(),
        start(0, {"type": "google_search_call", "id": "s1", "signature": ""}),
        delta(0, {"type": "google_search_call", "arguments": {"queries": ["euro 2024"]}}),
        stop(0),
        start(1, {"type": "google_search_result", "call_id": "s1"}),
        delta(1, {"type": "google_search_result", "signature": "sig", "is_error": False}),
        stop(1),
        start(2, {"type": "model_output"}),
        delta(2, {"type": "text", "text": "Spain"}),
        delta(2, {"type": "text_annotation_delta", "annotations": [cite]}),
        delta(2, {"type": "image", "mime_type": "image/png", "data": "iVBO"}),
        delta(2, {"type": "text", "text": "Caption"}),
        delta(2, {"type": "video", "uri": "https://v", "mime_type": "video/mp4"}),
        stop(2),
        start(3, {"type": "thought"}),
        delta(3, {"type": "thought_summary", "content": {"type": "text", "text": "Think"}}),
        delta(3, {"type": "thought_signature", "signature": "abc"}),
        stop(3),
        completed(),
    ])
    assert asm.steps == [
        {"type": "google_search_call", "id": "s1", "signature": "",
         "arguments": {"queries": ["euro 2024"]}},
        {"type": "google_search_result", "call_id": "s1", "signature": "sig", "is_error": False},
        {"type": "model_output", "content": [
            {"type": "text", "text": "Spain", "annotations": [cite]},
            {"type": "image", "mime_type": "image/png", "data": "iVBO"},
            {"type": "text", "text": "Caption"},
            {"type": "video", "uri": "https://v", "mime_type": "video/mp4"}]},
        {"type": "thought", "summary": [{"type": "text", "text": "Think"}], "signature": "abc"},
    ]


def test_it_keeps_unknown_events_and_deltas_without_crashing():
    odd_event = {"event_type": "interaction.teleported", "where": "mars"}
    odd_delta = {"type": "brand_new_delta", "payload": 1}
    asm = fold([
        created(), odd_event,
        start(0, {"type": "hologram_call", "id": "h"}),
        delta(0, {"type": "hologram_call", "beam": "on"}),
        start(1, {"type": "model_output"}),
        delta(1, odd_delta),
        delta(1, {"type": "text", "text": "ok"}),
        completed(),
    ])
    assert asm.steps == [{"type": "hologram_call", "id": "h", "beam": "on"},
                         {"type": "model_output", "content": [{"type": "text", "text": "ok"}]}]
    assert asm.unknown_events == [odd_event]
    assert asm.unknown_deltas == [(1, odd_delta)]


def test_it_creates_a_step_for_a_delta_without_start():
    asm = fold([created(), delta(0, {"text": "orphan"}),
                delta(1, {"type": "thought_signature", "signature": "s"}), completed()])
    assert asm.steps == [{"type": "model_output", "content": [{"type": "text", "text": "orphan"}]},
                         {"type": "thought", "signature": "s"}]


def test_it_records_an_error_event():
    asm = fold([created(), start(0, {"type": "model_output"}), delta(0, {"text": "part"}),
                {"event_type": "error", "error": {"code": "gateway_timeout", "message": "late"}}])
    assert asm.error == {"code": "gateway_timeout", "message": "late"}
    assert (asm.status, asm.finished) == ("failed", True)
    assert asm.steps[0]["content"][0]["text"] == "part"


def test_it_tracks_status_updates_legacy_names_and_event_ids():
    asm = Assembler()
    asm.feed(parse_event(created(status="queued")))
    assert asm.status == "queued"
    asm.feed(parse_event({"event_type": "interaction.status_update", "interaction_id": "v1_a",
                          "status": "in_progress", "continuation_token": "ck",
                          "event_id": "e1"}))
    assert (asm.status, asm.continuation_token, asm.last_event_id) == ("in_progress", "ck", "e1")
    asm.feed(parse_event({"event_type": "interaction.requires_action"}))
    assert asm.status == "requires_action"
    asm.feed(parse_event(delta(0, {"text": "x"}, event_id="e2")))
    asm.feed(parse_event(stop(0, usage={"total_tokens": 5}, step_usage={"total_tokens": 2})))
    assert (asm.last_event_id, asm.usage, asm.step_usage) == ("e2", {"total_tokens": 5},
                                                              {0: {"total_tokens": 2}})
    asm.feed(parse_event(completed()))
    assert asm.continuation_token is None  # completed is authoritative
    assert asm.finished


def hop(iid, text, usage, *, status="completed", token=None, user_input=False):
    events = [created(iid)]
    offset = 0
    if user_input:
        events += [start(0, {"type": "user_input", "content": [{"type": "text", "text": "q"}]}),
                   stop(0)]
        offset = 1
    events += [start(offset, {"type": "thought", "signature": iid}), stop(offset),
               start(offset + 1, {"type": "model_output"}), delta(offset + 1, {"text": text}),
               stop(offset + 1)]
    extra = {"usage": usage}
    if token:
        extra["continuation_token"] = token
    return [*events, completed(iid, status, **extra)]


HOP1_USAGE = {"total_input_tokens": 10, "total_output_tokens": 3, "total_tokens": 13,
              "input_tokens_by_modality": [{"modality": "text", "tokens": 10}]}
HOP2_USAGE = {"total_input_tokens": 15, "total_output_tokens": 2, "total_tokens": 17,
              "input_tokens_by_modality": [{"modality": "text", "tokens": 12},
                                           {"modality": "image", "tokens": 3}],
              "grounding_tool_count": [{"type": "google_search", "count": 1}]}
MERGED_USAGE = {"total_input_tokens": 25, "total_output_tokens": 5, "total_tokens": 30,
                "input_tokens_by_modality": [{"modality": "text", "tokens": 22},
                                             {"modality": "image", "tokens": 3}],
                "grounding_tool_count": [{"type": "google_search", "count": 1}],
                "initial_input_tokens": 10}


def test_it_merges_continuation_hops_into_one_result():
    asm = fold(hop("hop1", "Part one. ", HOP1_USAGE, status="requires_continuation", token="t1")
               + hop("hop2", "Part two.", HOP2_USAGE, user_input=True))
    assert [s.get("signature") or s["content"][0]["text"] for s in asm.steps] == [
        "hop1", "Part one. ", "hop2", "Part two."]
    assert asm.usage == MERGED_USAGE
    assert (asm.interaction_id, asm.interaction_ids) == ("hop2", ["hop1", "hop2"])
    assert asm.status == "completed" and asm.finished


def test_it_is_not_finished_by_an_intermediate_hop():
    asm = fold(hop("hop1", "x", HOP1_USAGE, status="requires_continuation", token="t1"))
    assert (asm.finished, asm.continuation_token) == (False, "t1")


def test_it_merges_unary_hops_like_the_sdk():
    hop1 = {"id": "h1", "status": "requires_continuation", "continuation_token": "t",
            "created": "c1", "previous_interaction_id": "p0", "usage": HOP1_USAGE,
            "steps": [{"type": "model_output", "content": [{"type": "text", "text": "A"}]}]}
    hop2 = {"id": "h2", "status": "completed", "created": "c2", "previous_interaction_id": "h1",
            "usage": HOP2_USAGE,
            "steps": [{"type": "user_input", "content": "q"},
                      {"type": "model_output", "content": [{"type": "text", "text": "B"}]}]}
    merged = merge_interactions([hop1, hop2])
    assert merged["id"] == "h2" and merged["status"] == "completed"
    assert (merged["created"], merged["previous_interaction_id"]) == ("c1", "p0")
    assert [s["content"][0]["text"] for s in merged["steps"]] == ["A", "B"]
    assert merged["usage"] == MERGED_USAGE
    assert "continuation_token" not in merged


def test_it_uses_total_input_when_the_first_hop_lacks_initial_tokens():
    assert merge_usage([{"total_input_tokens": 4}, None, {"total_input_tokens": 6}]) == {
        "total_input_tokens": 10, "initial_input_tokens": 4}
    assert merge_usage([None]) is None


# ---------------------------------------------------------------------- UI ops


def apply_ops(steps: list, ops: list) -> None:
    """The browser side of docs/websocket.md."""
    for op in ops:
        if op[0] == "step":
            _, i, step = op
            while len(steps) <= i:
                steps.append(None)
            steps[i] = copy.deepcopy(step)
        else:
            _, i, b, text = op
            content = steps[i]["content"]
            if b == len(content):
                content.append({"type": "text", "text": ""})
            content[b]["text"] += text


def test_it_coalesces_text_appends_into_one_op():
    asm = fold([created(), start(0, {"type": "model_output"}), delta(0, {"text": "a"})])
    assert asm.take_changes() == [
        ("step", 0, {"type": "model_output", "content": [{"type": "text", "text": "a"}]})]
    for piece in "bcd":
        asm.feed(parse_event(delta(0, {"type": "text", "text": piece})))
    assert asm.changed == {0}
    assert asm.take_changes() == [("text", 0, 0, "bcd")]
    assert asm.take_changes() == [] and asm.changed == set()


def test_it_sends_no_text_op_for_a_step_sent_whole():
    asm = fold([created(), start(0, {"type": "model_output"}), delta(0, {"text": "a"})])
    asm.take_changes()
    for d in ({"text": "b"}, {"type": "image", "data": "X"}, {"text": "c"}, {"text": "d"}):
        asm.feed(parse_event(delta(0, d)))
    ops = asm.take_changes()
    assert ops == [("step", 0, {"type": "model_output", "content": [
        {"type": "text", "text": "ab"}, {"type": "image", "data": "X"},
        {"type": "text", "text": "cd"}]})]


def test_it_opens_a_new_text_block_with_a_text_op():
    asm = fold([created(), start(0, {"type": "model_output"}), delta(0, {"text": "a"}),
                delta(0, {"type": "image", "data": "X"})])
    asm.take_changes()
    asm.feed(parse_event(delta(0, {"text": "b"})))
    asm.feed(parse_event(delta(0, {"text": "c"})))
    assert asm.take_changes() == [("text", 0, 2, "bc")]


def test_step_ops_are_copies():
    asm = fold([created(), start(0, {"type": "model_output"}), delta(0, {"text": "a"})])
    (op,) = asm.take_changes()
    asm.feed(parse_event(delta(0, {"text": "b"})))
    assert op[2]["content"][0]["text"] == "a"


def rich_transcript() -> list[dict]:
    cite = {"type": "url_citation", "url": "u", "start_index": 0, "end_index": 2}
    events = [created(), start(0, {"type": "thought", "summary": []})]
    events += [delta(0, {"type": "thought_summary", "content": {"type": "text", "text": "t"}}),
               delta(0, {"text": " more"}),
               delta(0, {"type": "thought_signature", "signature": "s"}), stop(0),
               start(1, {"type": "model_output", "content": [{"type": "text", "text": "Hi"}]})]
    events += [delta(1, {"type": "text", "text": f"w{n} "}) for n in range(30)]
    events += [delta(1, {"type": "text_annotation_delta", "annotations": [cite]}),
               delta(1, {"type": "image", "data": "IMG"})]
    events += [delta(1, {"text": f"x{n}"}) for n in range(20)]
    events += [stop(1), start(2, {"type": "function_call", "id": "c", "name": "f",
                                  "arguments": {}}),
               delta(2, {"type": "arguments_delta", "arguments": '{"k":'}),
               delta(2, {"type": "arguments_delta", "arguments": ' "v"}'}), stop(2),
               start(3, {"type": "model_output"})]
    events += [delta(3, {"text": f"y{n}"}) for n in range(15)]
    return [*events, stop(3), completed(status="requires_action")]


@pytest.mark.parametrize("seed", range(25))
def test_ops_rebuild_the_steps_whatever_the_batching(seed):
    rng = random.Random(seed)
    asm, mirror = Assembler(), []
    for raw in rich_transcript():
        asm.feed(parse_event(copy.deepcopy(raw)))
        if rng.random() < 0.3:
            apply_ops(mirror, asm.take_changes())
            assert mirror == asm.steps
    apply_ops(mirror, asm.take_changes())
    assert mirror == asm.steps == fold(rich_transcript()).steps


@pytest.mark.parametrize("seed", range(5))
def test_ops_are_minimal(seed):
    rng = random.Random(seed)
    asm = Assembler()
    for raw in rich_transcript():
        asm.feed(parse_event(copy.deepcopy(raw)))
        if rng.random() < 0.3:
            ops = asm.take_changes()
            steps_sent = [op[1] for op in ops if op[0] == "step"]
            assert len(steps_sent) == len(set(steps_sent))
            texts = [(op[1], op[2]) for op in ops if op[0] == "text"]
            assert len(texts) == len(set(texts))
            assert not {i for i, _ in texts} & set(steps_sent)


# ---------------------------------------------------------------------- cross-check


def interaction_fixture() -> dict:
    return {"id": "v1_x", "status": "completed", "usage": {"total_tokens": 9}, "steps": [
        {"type": "user_input", "content": [{"type": "text", "text": "q"}]},
        {"type": "thought", "signature": "sig", "summary": [{"type": "text", "text": "plan"}]},
        {"type": "model_output", "content": [
            {"type": "text", "text": "Spain won Euro 2024.", "annotations": [
                {"type": "url_citation", "url": "u", "start_index": 0, "end_index": 20}]},
            {"type": "image", "data": "AAA", "mime_type": "image/png"}]},
        {"type": "function_call", "id": "c", "name": "f", "arguments": {"a": [1, "é"]}},
        {"type": "code_execution_result", "call_id": "x", "result": "ok"},
    ]}


def test_it_reassembles_what_the_fake_upstream_explodes():
    inter = interaction_fixture()
    asm = fold(transcripts.explode(inter))
    assert asm.steps == [s for s in inter["steps"] if s["type"] != "user_input"]
    assert asm.usage == inter["usage"]


@pytest.mark.parametrize("name", transcripts.fixture_names())
def test_it_agrees_with_the_fake_upstream_folder_on_every_fixture(name):
    hops = transcripts.load(name)
    for hop_transcript in hops:
        ours = fold(hop_transcript.events)
        theirs = transcripts.fold(hop_transcript.events)
        assert ours.steps == theirs.output_steps()
        assert ours.status == theirs.status


def test_it_merges_the_recorded_continuation_hops():
    hops = transcripts.load("continuation")
    asm = fold([e for h in hops for e in h.events])
    assert [s["content"][0]["text"] for s in asm.steps] == ["Part one. ", "Part two."]
    assert asm.usage["total_input_tokens"] == 25 and asm.usage["initial_input_tokens"] == 10
    assert asm.status == "completed" and len(asm.interaction_ids) == 2


def test_it_survives_known_events_of_the_wrong_shape():
    bad = [{"event_type": "step.delta", "index": [1], "delta": "x"},
           {"event_type": "step.start", "index": 0, "step": "not a dict"},
           {"event_type": "step.delta", "index": 0, "delta": {"type": {"odd": 1}}},
           {"event_type": ["unhashable"]},
           {"event_type": "interaction.completed", "interaction": "?"}]
    asm = fold([created(), *bad, start(1, {"type": "model_output"}), delta(1, {"text": "ok"})])
    assert asm.steps == [{"type": "model_output", "content": [{"type": "text", "text": "ok"}]}]
    assert asm.unknown_events == bad
