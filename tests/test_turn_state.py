"""The pure part of a run: scripted events in, numbered frames and the turn's state out."""

import copy
import json

import pytest

from conversations.interactions import parse_event
from conversations.turn_state import TurnState
from devtools.fake_upstream import transcripts
from tests.streaming import replay, text_of

TURN_ID = "7d3f8c3e-0000-4000-8000-000000000001"
BASE = {"id": TURN_ID, "parent_id": None, "client_id": "c1", "input": [], "status": "queued",
        "steps": [], "usage": None, "error": None, "seq": 0, "interaction_id": "",
        "created": "2025-01-01T00:00:00+00:00"}


def created(status="in_progress"):
    return {"event_type": "interaction.created",
            "interaction": {"id": "int-1", "status": status, "object": "interaction"}}


def start(i=0):
    return {"event_type": "step.start", "index": i, "step": {"type": "model_output",
                                                             "content": []}}


def text(words, i=0):
    return {"event_type": "step.delta", "index": i, "delta": {"type": "text", "text": words}}


def stop(i=0):
    return {"event_type": "step.stop", "index": i}


def completed(status="completed", **interaction):
    return {"event_type": "interaction.completed",
            "interaction": {"id": "int-1", "status": status, "object": "interaction",
                            **interaction}}


def error(code="stopped", message="It stopped."):
    return {"event_type": "error", "error": {"code": code, "message": message}}


class Script:
    """A TurnState fed raw events, collecting the frames it numbers."""

    def __init__(self):
        self.state = TurnState(TURN_ID, copy.deepcopy(BASE))
        self.frames: list[dict] = []
        self.content: list[bool] = []

    def feed(self, *raws) -> "Script":
        for raw in raws:
            self.state.feed(parse_event(copy.deepcopy(raw)))
        return self

    def frame(self) -> dict | None:
        text, content = self.state.next_frame()
        if text is None:
            return None
        self.frames.append(json.loads(text))
        self.content.append(content)
        return self.frames[-1]

    def finish(self) -> dict | None:
        text = self.state.last_frame()
        if text is None:
            return None
        self.frames.append(json.loads(text))
        return self.frames[-1]


def test_deltas_between_frames_coalesce_into_one_text_op():
    script = Script().feed(created(), start(), text("Hello"))
    first = script.frame()
    script.feed(text(", "), text("wor"), text("ld"))
    second = script.frame()

    assert first["ops"] == [["step", 0, {"type": "model_output",
                                         "content": [{"type": "text", "text": "Hello"}]}]]
    assert second == {"type": "turn.update", "turn_id": TURN_ID, "seq": 2,
                      "ops": [["text", 0, 0, ", world"]]}


def test_frames_are_numbered_one_by_one_and_nothing_new_makes_no_frame():
    script = Script().feed(created(), start())
    script.frame()
    assert script.frame() is None
    for words in ("a", "b", "c"):
        script.feed(text(words))
        script.frame()
        assert script.frame() is None
    script.feed(stop(), completed())
    script.state.end_of_stream()
    script.finish()

    assert [f["seq"] for f in script.frames] == [1, 2, 3, 4, 5]
    assert script.state.seq == 5
    assert script.finish() is None  # the outcome went out: no sixth frame


def test_a_live_field_goes_out_only_when_it_changes():
    script = Script().feed(created(), start())
    first = script.frame()
    script.feed(text("a"))
    second = script.frame()

    assert first["status"] == "in_progress" and first["interaction_id"] == "int-1"
    assert "status" not in second and "interaction_id" not in second
    assert [f.get("status") for f in script.frames].count("in_progress") == 1


def test_the_outcome_goes_out_only_in_the_last_frame():
    script = Script().feed(created(), start(), text("Hi"), stop(),
                           completed(usage={"total_tokens": 5}))
    before = script.frame()  # the stream said "completed", but it has not ended yet
    script.state.end_of_stream()
    last = script.finish()

    assert before.get("status", "in_progress") == "in_progress"
    assert before["usage"] == {"total_tokens": 5}
    assert last == {"type": "turn.update", "turn_id": TURN_ID, "seq": 2, "ops": [],
                    "status": "completed"}
    assert script.state.state()["status"] == "completed"


def test_an_error_event_goes_out_in_the_last_frame_with_the_failed_status():
    script = Script().feed(created(), start(), text("Half"), stop(), error())
    script.frame()
    script.feed(completed(status="failed"))
    script.frame()
    script.state.end_of_stream()
    last = script.finish()

    assert all("error" not in f and f.get("status") != "failed" for f in script.frames[:-1])
    assert last["status"] == "failed"
    assert last["error"] == {"code": "stopped", "message": "It stopped."}
    assert script.state.error == last["error"]


@pytest.mark.parametrize("raws, status", [
    ([created(), start(), text("All"), stop()], "completed"),  # no interaction.completed
    ([created(), start(), text("Half"), error(),
      {"event_type": "interaction.status_update", "interaction_id": "int-1",
       "status": "in_progress"}], "failed"),  # still "running" after the error
])
def test_a_stream_that_ends_while_running_is_completed_or_failed_on_an_error(raws, status):
    script = Script().feed(*raws)
    script.frame()
    script.state.end_of_stream()
    last = script.finish()

    assert last["status"] == script.state.status == status
    assert text_of(script.state.state()["steps"]) in ("All", "Half")


def test_a_final_status_from_upstream_survives_the_end_of_the_stream():
    script = Script().feed(created(), start(), text("Cut"), completed(status="incomplete"))
    script.state.end_of_stream()

    assert script.finish()["status"] == "incomplete"


def test_an_outcome_known_early_still_waits_for_the_last_frame():
    script = Script().feed(created(), start(), text("Half"))
    script.state.fail("unavailable", "No model.", retryable=False)
    early = script.frame()  # e.g. a socket connected just then
    last = script.finish()

    assert "status" not in early or early["status"] == "in_progress"
    assert "error" not in early
    assert last["status"] == "failed" and last["error"]["code"] == "unavailable"


def test_a_failure_after_partial_output_keeps_the_text():
    script = Script().feed(created(), start(), text("The first "))
    script.frame()
    script.feed(text("half"))  # not numbered yet when the run fails
    script.state.fail("internal", "Something went wrong.", retryable=True)
    last = script.finish()

    assert last["ops"] == [["text", 0, 0, "half"]]
    assert last["status"] == "failed"
    assert last["error"] == {"code": "internal", "message": "Something went wrong.",
                             "retryable": True}
    steps, seq = replay(script.frames, TURN_ID)
    assert text_of(steps) == "The first half" == text_of(script.state.state()["steps"])
    assert seq == script.state.state()["seq"]


def test_a_cancelled_turn_says_so_in_its_last_frame_without_an_error():
    script = Script().feed(created(), start(), text("Stop"))
    script.frame()
    script.state.cancel()
    last = script.finish()

    assert last["status"] == "cancelled" and "error" not in last


def test_state_has_no_side_effects():
    script = Script().feed(created(), start(), text("Hello"))
    script.frame()
    first, second = script.state.state(), script.state.state()

    assert first == second
    assert first["seq"] == second["seq"] == script.state.seq == 1
    assert script.frame() is None  # nothing was numbered by reading the state
    assert first["steps"] is not script.state.assembler.steps  # a copy, for later sending


def test_state_refuses_while_changes_are_not_numbered():
    script = Script().feed(created(), start(), text("Hello"))
    script.frame()
    script.feed(text(" again"))

    with pytest.raises(RuntimeError):
        script.state.state()
    script.frame()
    assert text_of(script.state.state()["steps"]) == "Hello again"


def test_state_is_the_base_with_the_live_fields_as_last_sent():
    script = Script()
    assert script.state.state() == BASE  # before any event: the turn as created

    script.feed(created(), start(), text("Hi"))
    script.frame()
    state = script.state.state()
    assert state == dict(BASE, status="in_progress", interaction_id="int-1", seq=1,
                         steps=[{"type": "model_output",
                                 "content": [{"type": "text", "text": "Hi"}]}])


def test_only_frames_with_content_open_the_coalescing_window():
    script = Script().feed(created())
    script.frame()  # a status: no content
    script.feed(start())
    script.frame()  # a new step: announced, no content yet
    script.feed(text("a"))
    script.frame()  # text
    script.feed(start(1))
    script.frame()  # another new step
    script.feed({"event_type": "step.delta", "index": 1,
                 "delta": {"type": "text", "text": "b",
                           "annotations": [{"type": "url_citation", "url": "u"}]}})
    script.frame()  # a whole-step op on a step already shown: content

    assert script.content == [False, False, True, False, True]


def test_the_frames_of_a_recorded_stream_replay_to_its_final_steps():
    [transcript] = transcripts.load("seed_stream")
    script = Script()
    for raw in transcript.events:
        script.feed(raw)
        script.frame()
    script.state.end_of_stream()
    script.finish()

    steps, seq = replay(script.frames, TURN_ID)
    state = script.state.state()
    assert steps == state["steps"] == script.state.assembler.steps
    assert seq == state["seq"] == len(script.frames)
    assert state["status"] == script.frames[-1]["status"] == "completed"


def test_a_detail_goes_out_while_files_are_prepared_and_is_cleared_after():
    script = Script()
    script.state.detail = "Uploading clip.mp4 (40%)…"
    shown = script.frame()
    assert (shown["seq"], shown["ops"], shown["detail"]) == (1, [], "Uploading clip.mp4 (40%)…")
    assert "status" not in shown  # still queued: the page shows the detail instead
    assert script.state.state()["detail"] == "Uploading clip.mp4 (40%)…"  # for turn.sync
    assert script.frame() is None  # unchanged: no frame
    script.state.detail = None
    script.feed(created(), start(), text("Hi"))
    streaming = script.frame()
    assert streaming["detail"] is None and streaming["ops"]


def test_the_last_frame_clears_a_detail_left_by_a_failure():
    script = Script()
    script.state.detail = "Waiting for Google to process clip.mp4…"
    script.frame()
    script.state.fail("file_failed", "Google could not process “clip.mp4”.", retryable=False)
    last = script.finish()
    assert last["detail"] is None and last["status"] == "failed"


RECIPE = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}


@pytest.mark.parametrize(("reply", "status", "check"), [
    ('{"name": "Bread"}', "completed", {"valid": True, "error": None}),
    ('{"nom": "Pain"}', "completed",
     {"valid": False, "error": "The reply does not match the schema: 'name' is a required "
                               "property."}),
    ('{"name": "Br', "incomplete", {"valid": False, "error": "The reply is not valid JSON: "
                                    "Unterminated string starting at (line 1, column 10)."}),
])
def test_the_last_frame_says_how_a_structured_reply_fared(reply, status, check):
    script = Script()
    script.state.schema = RECIPE
    script.feed(created(), start(), text(reply), stop())
    assert "output_check" not in script.frame()
    script.feed(completed(status))
    script.state.end_of_stream()
    last = json.loads(script.state.last_frame())
    assert last["output_check"] == check
    assert script.state.state()["output_check"] == check


def test_a_failed_or_unstructured_turn_is_not_checked():
    script = Script()
    script.state.schema = RECIPE
    script.feed(created(), start(), text("{"), stop())
    script.state.fail("boom", "It broke.", retryable=True)
    assert "output_check" not in json.loads(script.state.last_frame())
    free = Script().feed(created(), start(), text("hi"), stop(), completed())
    free.state.end_of_stream()
    assert "output_check" not in json.loads(free.state.last_frame())
