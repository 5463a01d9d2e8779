"""Typed wrappers: table dispatch, unknown types kept verbatim, SDK heuristics."""

import copy
import importlib
import json

import pytest

from conversations.interactions import events as ev
from conversations.interactions.content import (
    ANNOTATION_TYPES,
    CONTENT_TYPES,
    UnknownAnnotation,
    UnknownContent,
    UrlCitation,
    parse_annotation,
    parse_content,
)
from conversations.interactions.deltas import DELTA_TYPES, TextDelta, UnknownDelta, parse_delta
from conversations.interactions.interaction import Interaction
from conversations.interactions.steps import STEP_TYPES, ModelOutputStep, UnknownStep, parse_step

SDK_TYPES = "google.genai._gaos.types.interactions"


def _sdk_names(module: str, table: str) -> set[str]:
    pytest.importorskip("google.genai")
    return set(getattr(importlib.import_module(f"{SDK_TYPES}.{module}"), table))


@pytest.mark.parametrize(
    ("ours", "module", "table"),
    [
        (ev.EVENT_TYPES, "interactionsseevent", "_INTERACTION_SSE_EVENT_VARIANTS"),
        (STEP_TYPES, "step", "_STEP_VARIANTS"),
        (DELTA_TYPES, "stepdeltadata", "_STEP_DELTA_DATA_VARIANTS"),
        (CONTENT_TYPES, "content", "_CONTENT_VARIANTS"),
        (ANNOTATION_TYPES, "annotation", "_ANNOTATION_VARIANTS"),
    ],
)
def test_it_knows_every_type_the_sdk_knows(ours, module, table):
    assert _sdk_names(module, table) <= set(ours)


def test_it_dispatches_events_by_event_type():
    for name, cls in ev.EVENT_TYPES.items():
        event = ev.parse_event({"event_type": name})
        assert type(event) is cls
        assert event.event_type == name


@pytest.mark.parametrize(
    ("parse", "tables"),
    [
        (parse_step, STEP_TYPES),
        (parse_content, CONTENT_TYPES),
        (parse_annotation, ANNOTATION_TYPES),
        (parse_delta, DELTA_TYPES),
    ],
)
def test_it_dispatches_nested_objects_by_type(parse, tables):
    for name, cls in tables.items():
        assert type(parse({"type": name})) is cls


@pytest.mark.parametrize(
    ("parse", "unknown", "raw"),
    [
        (ev.parse_event, ev.UnknownEvent, {"event_type": "step.teleport", "x": [1, {"y": None}]}),
        (parse_step, UnknownStep, {"type": "hologram_call", "id": "h1", "args": {"a": 1}}),
        (parse_content, UnknownContent, {"type": "smell", "data": "AAAA", "extra": True}),
        (parse_annotation, UnknownAnnotation, {"type": "vibe", "start_index": 3}),
        (parse_delta, UnknownDelta, {"type": "brand_new_delta", "payload": "z"}),
    ],
)
def test_it_keeps_unknown_types_verbatim(parse, unknown, raw):
    wrapped = parse(copy.deepcopy(raw))
    assert type(wrapped) is unknown
    assert wrapped.to_dict() == raw
    assert json.loads(json.dumps(wrapped.to_dict())) == raw


def test_it_keeps_unknown_fields_of_known_types():
    raw = {"event_type": "step.start", "index": 0, "future": {"a": 1},
           "step": {"type": "model_output", "novel": 1, "content": [{"type": "text", "text": "x",
                                                                     "new_field": "kept"}]}}
    event = ev.parse_event(raw)
    assert event.to_dict() is raw
    step = parse_step(event.step)
    assert step.to_dict()["novel"] == 1
    assert step.content[0].to_dict()["new_field"] == "kept"


def test_it_exposes_lifecycle_fields():
    created = ev.parse_event({"event_type": "interaction.created", "event_id": "e1",
                              "interaction": {"id": "v1_a", "status": "in_progress"}})
    assert (created.interaction_id, created.status, created.event_id) == (
        "v1_a", "in_progress", "e1")
    done = ev.parse_event({"event_type": "interaction.completed", "interaction": {
        "id": "v1_a", "status": "requires_continuation", "continuation_token": "t",
        "usage": {"total_tokens": 3}}})
    assert (done.status, done.continuation_token, done.usage) == (
        "requires_continuation", "t", {"total_tokens": 3})
    update = ev.parse_event({"event_type": "interaction.status_update", "interaction_id": "v1_a",
                             "status": "in_progress", "continuation_token": "c"})
    assert (update.interaction_id, update.status, update.continuation_token) == (
        "v1_a", "in_progress", "c")


def test_it_derives_the_status_of_legacy_event_names():
    event = ev.parse_event({"event_type": "interaction.requires_action",
                            "interaction": {"id": "v1_b"}})
    assert isinstance(event, ev.LegacyStatusEvent)
    assert (event.status, event.interaction_id) == ("requires_action", "v1_b")
    assert ev.parse_event({"event_type": "interaction.in_progress"}).status == "in_progress"


def test_it_infers_text_for_an_untyped_delta():
    event = ev.parse_event({"event_type": "step.delta", "index": 2, "delta": {"text": "hi"}})
    assert (event.index, event.delta_type) == (2, "text")
    assert type(parse_delta({"text": "x"})) is TextDelta


def test_it_recognises_step_events_without_event_type():
    assert type(ev.parse_event({"index": 0, "delta": {"text": "a"}})) is ev.StepDelta
    assert type(ev.parse_event({"index": 0, "step": {"type": "thought"}})) is ev.StepStart
    assert type(ev.parse_event({"interaction": {"id": "x"}})) is ev.UnknownEvent


def test_it_reads_error_events_with_string_codes():
    event = ev.parse_event({"event_type": "error",
                            "error": {"code": "gateway_timeout", "message": "slow"}})
    assert (event.code, event.message) == ("gateway_timeout", "slow")
    assert ev.parse_event({"event_type": "error"}).message == ""


def test_it_reads_the_old_arguments_delta_form():
    assert parse_delta({"type": "arguments", "partial_arguments": '{"a"'}).fragment == '{"a"'
    assert parse_delta({"type": "arguments_delta", "arguments": "1}"}).fragment == "1}"


def test_it_slices_annotations_by_utf8_bytes():
    text = "Olé — 2024 won"
    start = len("Olé — ".encode())
    note = parse_annotation({"type": "url_citation", "url": "u", "start_index": start,
                             "end_index": start + 4})
    assert note.span(text) == "2024"
    assert isinstance(note, UrlCitation) and note.url == "u"


def test_it_accepts_string_user_input_content():
    step = parse_step({"type": "user_input", "content": "hello"})
    assert [c.text for c in step.content] == ["hello"]


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([], ""),
        ([{"type": "model_output", "content": [{"type": "text", "text": "Part one. "}]},
          {"type": "thought", "signature": "s"},
          {"type": "model_output", "content": [{"type": "text", "text": "Part two."}]}],
         "Part one. Part two."),
        ([{"type": "model_output", "content": [{"type": "text", "text": "before"}]},
          {"type": "function_call", "id": "c", "name": "f", "arguments": {}},
          {"type": "model_output", "content": [{"type": "text", "text": "after"}]}], "after"),
        ([{"type": "model_output", "content": [
            {"type": "text", "text": "A"}, {"type": "image", "data": "x"},
            {"type": "text", "text": "B"}]}], "B"),
        ([{"type": "model_output", "content": [{"type": "text", "text": "old"}]},
          {"type": "user_input", "content": [{"type": "text", "text": "q"}]}], ""),
    ],
)
def test_it_computes_output_text_like_the_sdk(steps, expected):
    inter = Interaction({"id": "i", "status": "completed", "steps": steps})
    assert inter.output_text == expected


def test_it_finds_the_last_output_image():
    inter = Interaction({"id": "i", "status": "completed", "steps": [
        {"type": "model_output", "content": [{"type": "image", "data": "A"},
                                             {"type": "image", "data": "B"},
                                             {"type": "text", "text": "t"}]}]})
    assert inter.output_image == {"type": "image", "data": "B"}
    assert inter.output_audio is None
    assert [type(s) for s in inter.steps] == [ModelOutputStep]
    assert inter.continuation_ids == ["i"]
