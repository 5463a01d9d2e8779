"""Fixtures and fake-upstream replies validate against the official google-genai 3.3.0 types.

Validation is strict: without the SDK's response context, a *known* variant that fails its schema
raises instead of falling back. Unknown type names still land in the SDK's `Unknown*` variants,
which is exactly the forward-compatibility the fixtures exercise.
"""

from __future__ import annotations

import functools
import json
import typing
from typing import Any

import httpx
import pytest
from google.genai._gaos.types import interactions as sdk
from google.genai._gaos.utils.serializers import ALLOW_UNKNOWN_UNION_VARIANTS
from httpx_sse import connect_sse
from pydantic import TypeAdapter, ValidationError

from conversations import interactions as ours
from devtools.fake_upstream import transcripts as tr

SSE_EVENT = TypeAdapter(sdk.InteractionSSEEvent)
LENIENT = {ALLOW_UNKNOWN_UNION_VARIANTS: True}  # how the SDK itself parses server responses
# Realism the strict SDK types reject: the typeless delta of protocol 14.5, and the seed's own
# google_search_call without an `id`. Nothing else may fail.
FIXTURES_WITH_GAPS = {"thought_summary", "seed_google_search"}
TRANSCRIPTS = [(name, i) for name in tr.fixture_names() for i in range(len(tr.load(name)))]


# --- helpers -----------------------------------------------------------------------------------

def strict_errors(validate: Any, obj: dict[str, Any]) -> set[tuple[Any, ...]]:
    """Error locations of a strict validation (empty when it passes)."""
    try:
        validate(obj)
    except ValidationError as exc:
        return {tuple(e["loc"]) for e in exc.errors()}
    return set()


def validate_event(event: dict[str, Any]) -> Any:
    return SSE_EVENT.validate_python(event)


def validate_interaction(resource: dict[str, Any]) -> Any:
    return sdk.Interaction.model_validate(resource)


def event_gaps(event: dict[str, Any]) -> set[tuple[Any, ...]]:
    """Where strict validation of this event is expected to fail (see FIXTURES_WITH_GAPS)."""
    if event.get("event_type") == "step.delta" and "type" not in event.get("delta", {}):
        return {("delta",)}
    step = event.get("step") if event.get("event_type") == "step.start" else None
    if step and step.get("type") == "google_search_call" and "id" not in step:
        return {("step", "id")}
    return set()


def interaction_gaps(resource: dict[str, Any]) -> set[tuple[Any, ...]]:
    return {("steps", i, "id") for i, s in enumerate(resource.get("steps") or [])
            if s.get("type") == "google_search_call" and "id" not in s}


def check_event(event: dict[str, Any]) -> None:
    assert strict_errors(validate_event, event) == event_gaps(event), event
    SSE_EVENT.validate_python(event, context=LENIENT)


def check_interaction(resource: dict[str, Any]) -> None:
    assert strict_errors(validate_interaction, resource) == interaction_gaps(resource), resource
    sdk.Interaction.model_validate(resource, context=LENIENT)


def sse_events(client: httpx.Client, method: str, url: str, **kwargs: Any) -> list[dict[str, Any]]:
    with connect_sse(client, method, url, **kwargs) as source:
        return [json.loads(s.data) for s in source.iter_sse() if s.data != "[DONE]"]


@pytest.fixture
def client(fake_upstream):
    with httpx.Client(base_url=fake_upstream.base_url, timeout=10,
                      headers={"x-goog-api-key": fake_upstream.api_key}) as c:
        yield c


# --- recorded fixtures ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, hop", TRANSCRIPTS)
def test_every_fixture_event_validates(name, hop):
    for event in tr.load(name)[hop].events:
        check_event(event)


@pytest.mark.parametrize("name", sorted(p.stem for p in tr.FIXTURES.glob("*.json")))
def test_every_fixture_interaction_validates(name):
    check_interaction(tr.load_interaction(name))


@pytest.mark.parametrize("name, hop", TRANSCRIPTS)
def test_every_folded_transcript_validates(name, hop):
    folder = tr.fold(tr.load(name)[hop].events)
    check_interaction({"id": "v1_x", "status": folder.status, "steps": folder.output_steps()})


def test_only_the_known_fixtures_have_gaps():
    with_gaps = {name for name, hop in TRANSCRIPTS
                 if any(event_gaps(e) for e in tr.load(name)[hop].events)}
    assert with_gaps == FIXTURES_WITH_GAPS


def test_unknown_future_types_land_in_the_sdk_unknown_variants():
    parsed = [validate_event(e) for e in tr.load("unknown_types")[0].events]
    assert [type(p).__name__ for p in parsed[1:3]] == ["UnknownInteractionSSEEvent"] * 2
    starts = [p for p in parsed if isinstance(p, sdk.StepStart)]
    assert isinstance(starts[0].step, sdk.UnknownStep)
    assert isinstance(starts[1].step.content[0], sdk.UnknownContent)
    deltas = [p.delta for p in parsed if isinstance(p, sdk.StepDelta)]
    assert sum(isinstance(d, sdk.UnknownStepDeltaData) for d in deltas) == 2
    annotations = next(d.annotations for d in deltas if isinstance(d, sdk.TextAnnotationDelta))
    assert [type(a) for a in annotations] == [sdk.UnknownAnnotation, sdk.URLCitation]
    # Unknown variants keep the raw payload and serialise back unchanged.
    assert starts[0].step.model_dump() == tr.load("unknown_types")[0].events[3]["step"]


# --- what the fake upstream serves ------------------------------------------------------------

@pytest.mark.parametrize("name, hop", TRANSCRIPTS)
def test_served_transcripts_validate(fake_upstream, client, name, hop):
    transcript = tr.load(name)[hop]
    fake_upstream.script(transcript)
    body = {"model": "gemini-3.5-flash", "input": "hi", "stream": True}
    streamed = sse_events(client, "POST", "/v1beta/interactions", json=body)
    iid = streamed[0]["interaction"]["id"]
    url = f"/v1beta/interactions/{iid}"
    replayed = sse_events(client, "GET", url, params={"stream": "true"})
    for event in streamed + replayed:
        check_event(event)
    check_interaction(client.get(url, params={"include_input": "true"}).json())
    fake_upstream.script(transcript)
    created = client.post("/v1beta/interactions", json={**body, "stream": False}).json()
    check_interaction(created)
    if name == "unknown_types":
        steps = validate_interaction(created).steps
        assert isinstance(steps[0], sdk.UnknownStep)
        assert isinstance(steps[1].content[0], sdk.UnknownContent)


INPUTS = [
    "Explain how AI works",
    {"type": "text", "text": "hi"},
    [{"type": "text", "text": "Compare these."},
     {"type": "image", "data": "iVBORw0KGgo=", "mime_type": "image/png"}],
    [{"type": "user_input", "content": "I have 2 dogs in my house."}],
]


@pytest.mark.parametrize("value", INPUTS)
def test_echo_replies_validate_for_every_input_shape(client, value):
    body = {"model": "gemini-3.5-flash", "input": value, "system_instruction": "Be brief.",
            "generation_config": {"thinking_level": "low", "temperature": 0.2}}
    created = client.post("/v1beta/interactions", json=body).json()
    check_interaction(created)
    got = client.get(f"/v1beta/interactions/{created['id']}",
                     params={"include_input": "true", "stream": "false"}).json()
    check_interaction(got)
    for event in sse_events(client, "POST", "/v1beta/interactions", json={**body, "stream": True}):
        check_event(event)


def test_background_cancel_and_function_turns_validate(fake_upstream, client):
    started = client.post("/v1beta/interactions",
                          json={"model": "m", "input": "long", "background": True}).json()
    check_interaction(started)
    check_interaction(client.post(f"/v1beta/interactions/{started['id']}/cancel").json())
    fake_upstream.script("function_call")
    call = client.post("/v1beta/interactions", json={"model": "m", "input": "temp?"}).json()
    check_interaction(call)
    result = {"type": "function_result", "name": "get_current_temperature",
              "call_id": "call_abc123", "result": [{"type": "text", "text": "22"}]}
    reply = client.post("/v1beta/interactions", json={
        "model": "m", "previous_interaction_id": call["id"], "input": [result]}).json()
    check_interaction(reply)
    check_interaction(client.get(f"/v1beta/interactions/{reply['id']}",
                                 params={"include_input": "true"}).json())


# --- our type tables cover the SDK's unions -------------------------------------------------------

def sdk_variants(union: Any) -> set[str]:
    """The discriminator names of one of the SDK's open unions, read from its validator."""
    members, *metadata = typing.get_args(union)
    for meta in metadata:
        func = getattr(meta, "func", None)
        if isinstance(func, functools.partial) and "variants" in func.keywords:
            variants = func.keywords["variants"]
            known = {m for m in typing.get_args(members) if not m.__name__.startswith("Unknown")}
            assert set(variants.values()) == known  # the mapping covers every union member
            return set(variants)
    raise AssertionError(f"{union} is not an open discriminated union")


@pytest.mark.parametrize("union, table", [
    (sdk.InteractionSSEEvent, "EVENT_TYPES"),
    (sdk.Step, "STEP_TYPES"),
    (sdk.StepDeltaData, "DELTA_TYPES"),
    (sdk.Content, "CONTENT_TYPES"),
    (sdk.Annotation, "ANNOTATION_TYPES"),
])
def test_our_tables_know_every_sdk_type(union, table):
    names = sdk_variants(union)
    assert len(names) >= 5
    assert names - set(getattr(ours, table)) == set()


# --- our assembler applies every SDK delta type -----------------------------------------------

def sdk_classes(union: Any) -> dict[str, type]:
    """Discriminator name -> SDK model class, for one of the SDK's open unions."""
    members, *metadata = typing.get_args(union)
    for meta in metadata:
        func = getattr(meta, "func", None)
        if isinstance(func, functools.partial) and "variants" in func.keywords:
            return dict(func.keywords["variants"])
    raise AssertionError(f"{union} is not an open discriminated union")


def sample(schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    """The smallest value of a JSON schema: required fields only, first choice of unions."""
    if "$ref" in schema:
        return sample(defs[schema["$ref"].rsplit("/", 1)[1]], defs)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            choices = [s for s in schema[key] if s.get("type") != "null"]
            return sample(choices[0], defs)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {name: sample(schema["properties"][name], defs)
                for name in schema.get("required", [])}
    return {"string": "x", "integer": 1, "number": 1.0, "boolean": False, "array": []}.get(kind)


def sdk_sample(cls: type, name: str) -> dict[str, Any]:
    schema = cls.model_json_schema(by_alias=True)
    return dict(sample(schema, schema.get("$defs", {})), type=name)


# Which step a delta type belongs to (protocol section 8.4). A delta type the SDK adds that is
# missing here fails the test below until we decide how to handle it.
MODEL_OUTPUT_DELTAS = {"text", "text_annotation_delta", "image", "audio", "video", "document"}
DELTA_STEPS = {"thought_summary": "thought", "thought_signature": "thought",
               "arguments_delta": "function_call", "function_result": "function_result"}


def step_for(delta_type: str) -> str:
    if delta_type in MODEL_OUTPUT_DELTAS:
        return "model_output"
    if delta_type in DELTA_STEPS:
        return DELTA_STEPS[delta_type]
    assert delta_type.endswith(("_call", "_result")), f"no step known for {delta_type!r}"
    return delta_type


@pytest.mark.parametrize("delta_type", sorted(sdk_classes(sdk.StepDeltaData)))
def test_the_assembler_applies_every_sdk_delta_type(delta_type):
    from conversations.interactions import Assembler, parse_event

    step_type = step_for(delta_type)
    step = sdk_sample(sdk_classes(sdk.Step)[step_type], step_type)
    delta = sdk_sample(sdk_classes(sdk.StepDeltaData)[delta_type], delta_type)
    if delta_type == "arguments_delta":
        delta["arguments"] = '{"city": "Paris"}'
    assembler = Assembler()
    for event in [
        {"event_type": "interaction.created", "interaction": {"id": "i1", "status": "in_progress"}},
        {"event_type": "step.start", "index": 0, "step": step},
        {"event_type": "step.delta", "index": 0, "delta": delta},
        {"event_type": "step.stop", "index": 0},
        {"event_type": "interaction.completed", "interaction": {"id": "i1", "status": "completed"}},
    ]:
        assembler.feed(parse_event(event))
    assert assembler.unknown_deltas == []
    [folded] = assembler.steps
    assert folded["type"] == step_type
    TypeAdapter(sdk.Step).validate_python(folded)
    if delta_type == "arguments_delta":
        assert folded["arguments"] == {"city": "Paris"}
