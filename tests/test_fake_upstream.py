"""Tests of the fake Interactions upstream itself, with plain httpx (no app code involved)."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from devtools.fake_upstream import FakeUpstream
from devtools.fake_upstream import build_fixtures as bf
from devtools.fake_upstream import transcripts as tr

ROOT = Path(__file__).resolve().parent.parent
SSE_FIXTURES = sorted(p.stem for p in tr.FIXTURES.glob("*.sse"))
JSON_FIXTURES = sorted(p.stem for p in tr.FIXTURES.glob("*.json"))


@pytest.fixture
def client(fake_upstream: FakeUpstream) -> httpx.Client:
    with httpx.Client(base_url=fake_upstream.base_url, timeout=10,
                      headers={"x-goog-api-key": fake_upstream.api_key}) as c:
        yield c


def events_of(client: httpx.Client, method: str, url: str, **kwargs: Any) -> list[Any]:
    """Every SSE payload of a response, JSON-decoded ("[DONE]" kept as the string)."""
    with connect_sse(client, method, url, **kwargs) as source:
        return [s.data if s.data == "[DONE]" else json.loads(s.data) for s in source.iter_sse()]


def stream_create(client: httpx.Client, **body: Any) -> list[Any]:
    return events_of(client, "POST", "/v1beta/interactions",
                     json={"model": "gemini-3.5-flash", "stream": True, **body})


def create(client: httpx.Client, **body: Any) -> httpx.Response:
    return client.post("/v1beta/interactions", json={"model": "gemini-3.5-flash", **body})


def text_of(steps: list[dict[str, Any]]) -> str:
    return "".join(b.get("text", "") for s in steps if s["type"] == "model_output"
                   for b in s.get("content", []) if b.get("type") == "text")


def poll(client: httpx.Client, iid: str, until: str, timeout: float = 5) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/v1beta/interactions/{iid}").json()
        if body["status"] == until:
            return body
        time.sleep(0.02)
    raise AssertionError(f"{iid} never reached {until}")


# --- basics --------------------------------------------------------------------------------

def test_it_echoes_the_last_user_text(client):
    response = create(client, input="How does AI work?")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["object"] == "interaction" and body["status"] == "completed"
    assert body["id"].startswith("v1_")
    assert [s["type"] for s in body["steps"]] == ["model_output"]
    assert text_of(body["steps"]) == "Echo: How does AI work?"
    usage = body["usage"]
    assert usage["total_tokens"] >= usage["total_input_tokens"] + usage["total_output_tokens"] > 0


def test_it_streams_the_echo_as_word_deltas(client):
    events = stream_create(client, input=[{"type": "user_input", "content": "hello big world"}])
    kinds = [e["event_type"] for e in events]
    assert kinds[0] == "interaction.created" and kinds[-1] == "interaction.completed"
    deltas = [e["delta"]["text"] for e in events if e["event_type"] == "step.delta"]
    assert deltas == ["Echo: ", "hello ", "big ", "world"]
    assert events[0]["interaction"]["id"] == events[-1]["interaction"]["id"]


def test_it_puts_a_thought_first_when_thinking_level_is_set(client):
    body = create(client, input="hi", generation_config={"thinking_level": "low"}).json()
    assert [s["type"] for s in body["steps"]] == ["thought", "model_output"]
    assert body["steps"][0]["signature"]
    assert body["usage"]["total_thought_tokens"] > 0


def test_it_summarises_its_thought_when_summaries_are_asked_for(client):
    body = create(client, input="hi", generation_config={"thinking_summaries": "auto"}).json()
    thought = body["steps"][0]
    assert thought["type"] == "thought" and thought["signature"]
    assert [b["text"].split("**")[1] for b in thought["summary"]] == ["Reading the message",
                                                                      "Echoing it"]
    hidden = create(client, input="hi", generation_config={"thinking_summaries": "none",
                                                           "thinking_level": "low"}).json()
    assert "summary" not in hidden["steps"][0]


def test_it_accepts_every_input_shape(client):
    shapes = ["hi", {"type": "text", "text": "hi"}, [{"text": "hi"}],
              [{"type": "user_input", "content": [{"type": "text", "text": "hi"}]}]]
    for shape in shapes:
        assert text_of(create(client, input=shape).json()["steps"]) == "Echo: hi"


@pytest.mark.parametrize("body, status", [
    ({"input": "hi"}, 400),  # neither model nor agent
    ({"model": "m", "agent": "a", "input": "hi"}, 400),
    ({"model": "m"}, 400),  # no input
    ({"model": "m", "input": [{"type": "user_input"}, {"type": "text", "text": "x"}]}, 400),
    ({"model": "m", "input": "hi", "background": True, "store": False}, 400),
])
def test_it_rejects_invalid_creates(client, body, status):
    response = client.post("/v1beta/interactions", json=body)
    assert response.status_code == status
    assert response.json()["error"]["code"] == status


@pytest.mark.parametrize("version", ["v1", "v1beta", "v1alpha", "v1beta1/projects/p/locations/l"])
def test_it_accepts_any_version_segment(client, version):
    response = client.post(f"/{version}/interactions", json={"model": "m", "input": "x"})
    assert response.status_code == 200


def test_it_requires_an_api_key(fake_upstream):
    url = f"{fake_upstream.base_url}/v1beta/interactions"
    assert httpx.post(url, json={"model": "m", "input": "x"}).status_code == 401
    wrong = httpx.post(url, json={"model": "m", "input": "x"}, headers={"x-goog-api-key": "nope"})
    assert wrong.status_code == 401
    assert httpx.post(f"{url}?key=test-key", json={"model": "m", "input": "x"}).status_code == 200


def test_unknown_routes_are_404(client):
    assert client.get("/v1beta/models").status_code == 404
    assert client.get("/v1beta/interactions/nope").status_code == 404


def test_it_records_every_request(fake_upstream, client):
    create(client, input="hi")
    client.get("/v1beta/interactions/x", params={"stream": "false"},
               headers={"Api-Revision": "2026-05-20"})
    first, second = fake_upstream.requests
    assert (first.method, first.path, first.json["input"]) == ("POST", "/v1beta/interactions", "hi")
    assert first.headers["x-goog-api-key"] == "test-key"
    assert second.query == {"stream": "false"} and second.headers["api-revision"] == "2026-05-20"
    assert fake_upstream.find_requests("GET", r"/interactions/") == [second]


def test_it_reuses_keep_alive_connections(fake_upstream, client):
    for _ in range(3):
        create(client, input="hi")
    stream_create(client, input="hi")
    create(client, input="hi")
    assert len(fake_upstream.requests) == 5


# --- stored interactions -------------------------------------------------------------------

def test_get_returns_the_timeline_with_user_input(client):
    iid = create(client, input="first").json()["id"]
    body = client.get(f"/v1beta/interactions/{iid}", params={"stream": "false"}).json()
    assert [s["type"] for s in body["steps"]] == ["user_input", "model_output"]
    assert "input" not in body
    with_input = client.get(f"/v1beta/interactions/{iid}", params={"include_input": "true"}).json()
    assert with_input["input"] == "first"


def test_previous_interaction_id_chains_and_the_server_keeps_history(fake_upstream, client):
    first = create(client, input="I have 2 dogs.").json()["id"]
    second = create(client, input="How many paws?", previous_interaction_id=first).json()
    assert second["previous_interaction_id"] == first
    history = fake_upstream.history(second["id"])
    assert [s["type"] for s in history] == ["user_input", "model_output"] * 2


def test_unknown_previous_interaction_is_404(client):
    assert create(client, input="x", previous_interaction_id="v1_nope").status_code == 404


def test_store_false_is_not_stored(client):
    iid = create(client, input="x", store=False).json()["id"]
    assert client.get(f"/v1beta/interactions/{iid}").status_code == 404
    assert create(client, input="y", previous_interaction_id=iid).status_code == 404


def test_chaining_onto_a_running_interaction_is_400(client):
    iid = create(client, input="slow", background=True).json()["id"]
    response = create(client, input="next", previous_interaction_id=iid)
    assert response.status_code == 400
    assert response.json()["error"]["status"] == "FAILED_PRECONDITION"


def test_background_runs_return_in_progress_then_complete(client):
    started = create(client, input="analyse", background=True).json()
    assert started["status"] == "in_progress" and "steps" not in started
    done = poll(client, started["id"], "completed")
    assert text_of(done["steps"]) == "Echo: analyse"


def test_cancel_stops_a_running_background_interaction(client):
    iid = create(client, input="x", background=True).json()["id"]
    cancelled = client.post(f"/v1beta/interactions/{iid}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert client.get(f"/v1beta/interactions/{iid}").json()["status"] == "cancelled"
    events = events_of(client, "GET", f"/v1beta/interactions/{iid}", params={"stream": "true"})
    assert events[-1]["interaction"]["status"] == "cancelled"


def test_cancel_of_anything_else_is_400_or_404(client):
    iid = create(client, input="x").json()["id"]
    assert client.post(f"/v1beta/interactions/{iid}/cancel").status_code == 400
    assert client.post("/v1beta/interactions/v1_nope/cancel").status_code == 404


def test_delete_returns_an_empty_object(client):
    iid = create(client, input="x").json()["id"]
    response = client.delete(f"/v1beta/interactions/{iid}")
    assert (response.status_code, response.json()) == (200, {})
    assert client.get(f"/v1beta/interactions/{iid}").status_code == 404
    assert client.delete(f"/v1beta/interactions/{iid}").status_code == 404


# --- streams and resumption ----------------------------------------------------------------

def test_get_stream_replays_everything_and_resumes_after_last_event_id(client):
    events = stream_create(client, input="one two three four")
    iid = events[0]["interaction"]["id"]
    ids = [e["event_id"] for e in events if "event_id" in e]
    assert len(ids) == len(set(ids)) >= 5
    url = f"/v1beta/interactions/{iid}"
    assert events_of(client, "GET", url, params={"stream": "true"}) == events
    position = next(i for i, e in enumerate(events) if e.get("event_id") == ids[2])
    resumed = events_of(client, "GET", url, params={"stream": "true", "last_event_id": ids[2]})
    assert resumed == events[position + 1:]


def test_event_ids_are_sparse_like_the_real_service(client):
    events = stream_create(client, input="a b", generation_config={"thinking_level": "low"})
    without = {e["event_type"] for e in events if "event_id" not in e}
    assert without == {"interaction.created", "step.start", "step.stop", "step.delta"}
    assert all(e["delta"]["type"] == "thought_signature" for e in events
               if e["event_type"] == "step.delta" and "event_id" not in e)
    assert "event_id" in events[-1]


def test_unknown_last_event_id_is_400(client):
    iid = create(client, input="x").json()["id"]
    response = client.get(f"/v1beta/interactions/{iid}",
                          params={"stream": "true", "last_event_id": "bogus"})
    assert response.status_code == 400


def test_get_stream_of_a_running_interaction_continues_live(fake_upstream, client):
    fake_upstream.configure(delta_interval=0.02, deltas=10, background_delay=0)
    iid = create(client, input="x", background=True).json()["id"]
    live = events_of(client, "GET", f"/v1beta/interactions/{iid}", params={"stream": "true"})
    deltas = [e for e in live if e["event_type"] == "step.delta"]
    assert len(deltas) == 10 and live[-1]["event_type"] == "interaction.completed"


def test_dropped_stream_can_be_resumed_once(fake_upstream, client):
    fake_upstream.fault("drop", after=4)
    seen = []
    body = {"model": "m", "input": "a b c d e", "stream": True}
    with (pytest.raises(httpx.RemoteProtocolError),  # no terminating chunk
          connect_sse(client, "POST", "/v1beta/interactions", json=body) as source):
        for sse in source.iter_sse():
            seen.append(json.loads(sse.data))
    assert len(seen) == 4
    last = [e["event_id"] for e in seen if "event_id" in e][-1]
    iid = seen[0]["interaction"]["id"]
    rest = events_of(client, "GET", f"/v1beta/interactions/{iid}",
                     params={"stream": "true", "last_event_id": last})
    assert seen + rest == events_of(client, "GET", f"/v1beta/interactions/{iid}",
                                    params={"stream": "true"})


def test_a_malformed_data_line_is_inserted_at_position_k(fake_upstream, client):
    fake_upstream.fault("malformed", after=2)
    with connect_sse(client, "POST", "/v1beta/interactions",
                     json={"model": "m", "input": "a b", "stream": True}) as source:
        data = [s.data for s in source.iter_sse()]
    with pytest.raises(json.JSONDecodeError):
        json.loads(data[2])
    assert all(json.loads(d) for i, d in enumerate(data) if i != 2)


def test_slow_streams_delay_every_event(fake_upstream, client):
    fake_upstream.fault("slow", delay=0.05)
    started = time.monotonic()
    events = stream_create(client, input="a b")
    assert time.monotonic() - started >= 0.05 * len(events)


def test_deltas_and_rate_are_configurable(client, fake_upstream):
    fake_upstream.configure(deltas=25, delta_interval=0.004)
    started = time.monotonic()
    events = stream_create(client, input="hello")
    deltas = [e for e in events if e["event_type"] == "step.delta"]
    assert len(deltas) == 25 and time.monotonic() - started >= 25 * 0.004
    assert deltas[0]["delta"]["text"] == "Echo: "


def test_timestamps_are_emitted_only_when_configured(fake_upstream, client):
    assert all("_emitted" not in e for e in stream_create(client, input="x"))
    fake_upstream.configure(emit_timestamps=True)
    stamps = [e["_emitted"] for e in stream_create(client, input="x")]
    assert all(isinstance(s, float) and abs(s - time.time()) < 5 for s in stamps)


def test_stamped_text_deltas_carry_their_number_and_emit_time(fake_upstream, client):
    fake_upstream.configure(stamp_text=True, deltas=5)
    before = time.time()
    events = stream_create(client, input="x")
    texts = [e["delta"]["text"] for e in events if e["event_type"] == "step.delta"]
    stamps = [re.fullmatch(r"(.*)\[(\d+):(\d+\.\d{6})\]", t, re.S) for t in texts]
    assert "".join(m[1] for m in stamps) == "Echo: x lorem ipsum dolor "
    assert [int(m[2]) for m in stamps] == [1, 2, 3, 4, 5]
    assert all(before <= float(m[3]) <= time.time() for m in stamps)


# --- faults ----------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [429, 500, 503])
def test_status_faults_apply_to_the_next_n_requests(fake_upstream, client, status):
    fake_upstream.fault(status, times=2, retry_after=3)
    failures = [create(client, input="x") for _ in range(2)]
    assert [f.status_code for f in failures] == [status, status]
    assert failures[0].headers["retry-after"] == "3"
    assert failures[0].json()["error"]["code"] == status
    assert create(client, input="x").status_code == 200


def test_faults_can_match_method_and_path(fake_upstream, client):
    fake_upstream.fault(503, method="GET", path=r"/interactions/")
    iid = create(client, input="x").json()["id"]
    assert client.get(f"/v1beta/interactions/{iid}").status_code == 503
    assert client.get(f"/v1beta/interactions/{iid}").status_code == 200


# --- scripted transcripts ----------------------------------------------------------------------

@pytest.mark.parametrize("name", SSE_FIXTURES)
def test_served_transcripts_get_fresh_ids(fake_upstream, client, name):
    fake_upstream.script(name)
    recorded = tr.load(name)[0]
    events = [e for e in stream_create(client, input="x") if e != "[DONE]"]
    assert len(events) == len(recorded.events)
    iid = events[0]["interaction"]["id"]
    assert iid not in json.dumps(recorded.events)
    for event in events:
        if "interaction" in event and event["event_type"].startswith("interaction."):
            assert event["interaction"]["id"] == iid
        if "interaction_id" in event:
            assert event["interaction_id"] == iid
    ids = [e["event_id"] for e in events if "event_id" in e]
    assert len(ids) == len(set(ids)) > 0
    assert not set(ids) & {e.get("event_id") for e in recorded.events}


@pytest.mark.parametrize("name", SSE_FIXTURES)
def test_a_non_streaming_create_returns_the_folded_transcript(fake_upstream, client, name):
    fake_upstream.script(name)
    body = create(client, input="x").json()
    folded = tr.fold(tr.load(name)[0].events)
    assert body["steps"] == folded.output_steps()
    assert body["status"] == folded.status


def test_the_done_marker_is_sent_when_the_transcript_has_it(fake_upstream, client):
    fake_upstream.script("thought_summary")
    assert stream_create(client, input="x")[-1] == "[DONE]"
    fake_upstream.script("thought_summary")
    iid = create(client, input="x").json()["id"]
    replay = events_of(client, "GET", f"/v1beta/interactions/{iid}", params={"stream": "true"})
    assert replay[-1] == "[DONE]"


def test_scripts_accept_event_lists_and_interactions(fake_upstream, client):
    fake_upstream.script(tr.load_interaction("seed_basic"), tr.load("seed_stream")[0].events)
    assert text_of(create(client, input="x").json()["steps"]).startswith("AI learns patterns")
    assert text_of(create(client, input="x").json()["steps"]) == "AI works "
    assert text_of(create(client, input="x").json()["steps"]) == "Echo: x"


def test_function_calls_require_action_and_accept_results_by_call_id(fake_upstream, client):
    fake_upstream.script("function_call", "function_call_followup")
    first = create(client, input="What is the temperature in London?").json()
    assert first["status"] == "requires_action"
    call = first["steps"][-1]
    assert call == {"type": "function_call", "id": "call_abc123",
                    "name": "get_current_temperature", "arguments": {"location": "London"}}
    result = {"type": "function_result", "name": call["name"], "call_id": "call_abc123",
              "result": [{"type": "text", "text": '{"temperature": "22"}'}]}
    wrong = create(client, previous_interaction_id=first["id"],
                   input=[{**result, "call_id": "call_other"}])
    assert wrong.status_code == 400
    assert create(client, previous_interaction_id=first["id"], input="hi").status_code == 400
    second = create(client, previous_interaction_id=first["id"], input=[result])
    assert second.status_code == 200
    assert text_of(second.json()["steps"]) == "The temperature in London is currently 22°C."


def test_stateless_function_results_must_answer_a_call_in_the_history(client):
    result = {"type": "function_result", "call_id": "c1", "result": "22"}
    assert create(client, store=False, input=[result]).status_code == 400
    call = {"type": "function_call", "id": "c1", "name": "f", "arguments": {}}
    history = [{"type": "user_input", "content": "temp?"}, call, result]
    assert text_of(create(client, store=False, input=history).json()["steps"]) == \
        "Echo: c1 returned 22"


def test_continuation_hops_chain_by_token(fake_upstream, client):
    fake_upstream.script("continuation")
    hop1 = create(client, input="write a lot").json()
    assert hop1["status"] == "requires_continuation" and hop1["continuation_token"]
    bad = create(client, previous_interaction_id=hop1["id"], continuation_token="forged")
    assert bad.status_code == 400
    hop2 = create(client, previous_interaction_id=hop1["id"],
                  continuation_token=hop1["continuation_token"]).json()
    assert hop2["status"] == "completed" and "continuation_token" not in hop2
    assert text_of(hop1["steps"]) + text_of(hop2["steps"]) == "Part one. Part two."


def test_json_fixtures_round_trip_through_explode_and_fold():
    for name in JSON_FIXTURES:
        interaction = tr.load_interaction(name)
        folded = tr.fold(tr.explode(interaction))
        assert folded.output_steps() == interaction["steps"], name
        assert folded.status == interaction["status"]


def test_generated_fixture_files_are_up_to_date():
    for name, content in bf.generated_files().items():
        assert (tr.FIXTURES / name).read_text(encoding="utf-8") == content, (
            f"{name} is stale: run python -m devtools.fake_upstream.build_fixtures")


def test_fixtures_on_disk_are_valid_sse_and_json():
    for path in tr.FIXTURES.glob("*.sse"):
        for name, data in tr.parse_sse(path.read_text(encoding="utf-8")):
            payload = json.loads(data) if data != "[DONE]" else {"event_type": "done"}
            assert name == payload["event_type"], path.name
    for path in tr.FIXTURES.glob("*.json"):
        assert json.loads(path.read_text(encoding="utf-8"))["status"]


def test_annotation_offsets_are_utf8_byte_offsets():
    steps = tr.fold(tr.load("search_grounding_ar")[0].events).output_steps()
    block = steps[-1]["content"][0]
    raw = block["text"].encode("utf-8")
    cited = [raw[a["start_index"]:a["end_index"]].decode("utf-8") for a in block["annotations"]]
    assert cited == list(bf.SEARCH_SENTENCES)
    # Arabic letters are 2 bytes and the emoji 4, so character offsets would differ.
    second = block["annotations"][1]
    assert second["start_index"] != block["text"].index(bf.SEARCH_SENTENCES[1])
    assert "🏆" in cited[0] and "⚽" in cited[1]
    seed = tr.load_interaction("seed_google_search")["steps"][-1]["content"][0]
    assert seed["annotations"][0]["end_index"] == len(seed["text"].encode()) == 56


def test_the_image_fixtures_carry_a_real_png():
    steps = tr.fold(tr.load("image_output")[0].events).output_steps()
    assert [b["type"] for b in steps[0]["content"]] == ["text", "image", "text"]
    for data in (steps[0]["content"][1]["data"],
                 tr.load_interaction("seed_image")["steps"][0]["content"][0]["data"]):
        png = base64.b64decode(data, validate=True)
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and png[12:16] == b"IHDR"
        assert int.from_bytes(png[16:20], "big") == 8


def test_long_text_generates_n_deltas():
    events = tr.long_text(1000).events
    assert sum(e["event_type"] == "step.delta" for e in events) == 1000


# --- files -----------------------------------------------------------------------------------

def start_upload(client: httpx.Client, size: int, **headers: str) -> httpx.Response:
    return client.post("/upload/v1beta/files", json={"file": {"display_name": "cat.png"}},
                       headers={"X-Goog-Upload-Protocol": "resumable",
                                "X-Goog-Upload-Command": "start",
                                "X-Goog-Upload-Header-Content-Length": str(size),
                                "X-Goog-Upload-Header-Content-Type": "image/png", **headers})


def test_files_upload_in_chunks_then_become_active(fake_upstream, client):
    fake_upstream.configure(file_processing_gets=1)
    data = bf.tiny_png()
    started = start_upload(client, len(data))
    url = started.headers["x-goog-upload-url"]
    assert url.startswith(fake_upstream.base_url + "/upload/v1beta/files?upload_id=")
    # Chunk requests carry no API key: the session URL authorises them.
    first = httpx.post(url, content=data[:10], headers={"X-Goog-Upload-Command": "upload",
                                                        "X-Goog-Upload-Offset": "0"})
    assert first.status_code == 200 and first.headers["x-goog-upload-status"] == "active"
    bad = httpx.post(url, content=data[10:], headers={"X-Goog-Upload-Command": "upload",
                                                      "X-Goog-Upload-Offset": "3"})
    assert bad.status_code == 400
    final = httpx.post(url, content=data[10:], headers={
        "X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "10"})
    assert final.headers["x-goog-upload-status"] == "final"
    file = final.json()["file"]
    assert file["sizeBytes"] == str(len(data)) and file["mimeType"] == "image/png"
    assert file["displayName"] == "cat.png" and file["state"] == "PROCESSING"
    file_id = file["name"].removeprefix("files/")
    assert file["uri"] == f"{fake_upstream.base_url}/v1beta/files/{file_id}"
    states = [client.get(f"/v1/files/{file_id}").json()["state"] for _ in range(2)]
    assert states == ["PROCESSING", "ACTIVE"]
    assert client.delete(f"/v1beta/files/{file_id}").json() == {}
    assert client.get(f"/v1beta/files/{file_id}").status_code == 404


def test_upload_start_needs_the_key_and_size_must_match(fake_upstream, client):
    assert start_upload(client, 5, **{"x-goog-api-key": ""}).status_code == 401
    url = start_upload(client, 5).headers["x-goog-upload-url"]
    short = httpx.post(url, content=b"abc", headers={"X-Goog-Upload-Command": "upload, finalize",
                                                     "X-Goog-Upload-Offset": "0"})
    assert short.status_code == 400


def test_files_can_take_time_to_process(fake_upstream, client):
    fake_upstream.configure(file_processing_seconds=0.2)
    url = start_upload(client, 3).headers["x-goog-upload-url"]
    file = httpx.post(url, content=b"abc", headers={"X-Goog-Upload-Command": "upload, finalize",
                                                    "X-Goog-Upload-Offset": "0"}).json()["file"]
    path = f"/v1beta/{file['name']}"
    assert client.get(path).json()["state"] == "PROCESSING"
    time.sleep(0.25)
    assert client.get(path).json()["state"] == "ACTIVE"


# --- control API, separate process, load -------------------------------------------------------

def test_the_control_api_configures_scripts_and_faults(fake_upstream, client):
    control = httpx.Client(base_url=fake_upstream.base_url + "/_control")
    assert control.post("/config", json={"deltas": 3})
    assert control.post("/script", json={"name": "seed_basic"}).json() == {"queued": 1}
    assert control.post("/fault", json={"kind": 503, "times": 1}).status_code == 200
    assert create(client, input="x").status_code == 503
    assert text_of(create(client, input="x").json()["steps"]).startswith("AI learns")
    deltas = [e for e in stream_create(client, input="x") if e["event_type"] == "step.delta"]
    assert len(deltas) == 3
    recorded = control.get("/requests").json()["requests"]
    assert [r["method"] for r in recorded] == ["POST"] * 3
    assert recorded[0]["headers"]["x-goog-api-key"] == "test-key"
    assert control.post("/config", json={"nonsense": 1}).status_code == 400


def test_it_runs_as_a_separate_process():
    proc = subprocess.Popen([sys.executable, "-m", "devtools.fake_upstream", "--port", "0"],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        base_url = line.rsplit(" ", 1)[1].strip()
        assert httpx.get(f"{base_url}/_control/health").json()["ok"] is True
        httpx.post(f"{base_url}/_control/config", json={"deltas": 4})
        with httpx.Client(base_url=base_url, headers={"x-goog-api-key": "any"}) as client:
            deltas = [e for e in stream_create(client, input="x") if "delta" in e]
        assert len(deltas) == 4
    finally:
        proc.terminate()
        proc.wait(10)


async def raw_stream(host: str, port: int, n: int) -> bytes:
    """One streaming create over a bare socket, so the test measures the server, not httpx."""
    reader, writer = await asyncio.open_connection(host, port)
    body = json.dumps({"model": "m", "input": f"conversation {n}", "stream": True}).encode()
    writer.write(b"POST /v1beta/interactions HTTP/1.1\r\nHost: fake\r\nx-goog-api-key: test-key\r\n"
                 b"Content-Type: application/json\r\nConnection: close\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    data = await reader.read()
    writer.close()
    return data


async def test_it_serves_400_concurrent_streams(fake_upstream):
    fake_upstream.configure(delta_interval=0.05, deltas=20)
    started = time.monotonic()
    bodies = await asyncio.gather(*(raw_stream(fake_upstream.host, fake_upstream.port, n)
                                    for n in range(400)))
    elapsed = time.monotonic() - started
    assert [b.count(b'"event_type":"step.delta"') for b in bodies] == [20] * 400
    assert all(b.endswith(b"\r\n0\r\n\r\n") for b in bodies)  # every stream ended cleanly
    assert elapsed < 40  # one at a time would take 400 s (20 deltas at 20/s each)
