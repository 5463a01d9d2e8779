"""Writes the generated fixtures (`python -m devtools.fake_upstream.build_fixtures`).

The seed fixtures (`seed_*`, except the image one) are copied by hand from the seed documents;
everything here is built from Python data so that JSON stays valid and annotation offsets are
computed from the UTF-8 bytes, never counted by hand.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from typing import Any

from devtools.fake_upstream.transcripts import FIXTURES, Transcript, dump_sse, wants_event_id

MODEL = "gemini-3.5-flash"


def tiny_png(width: int = 8, height: int = 8) -> bytes:
    """A real PNG: an 8x8 sunset gradient (RGB, no filter)."""
    rows = b"".join(
        b"\x00" + b"".join(bytes((255, 64 + 20 * y, 32 + 24 * x)) for x in range(width))
        for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


PNG_B64 = base64.b64encode(tiny_png()).decode()


def byte_span(text: str, segment: str) -> tuple[int, int]:
    """UTF-8 byte offsets [start, end) of `segment` inside `text` (protocol section 7)."""
    raw, seg = text.encode(), segment.encode()
    start = raw.index(seg)
    return start, start + len(seg)


# --- event constructors --------------------------------------------------------------------

def created(iid: str, model: str = MODEL, **extra: Any) -> dict[str, Any]:
    interaction = {"id": iid, "status": "in_progress", "object": "interaction", "model": model,
                   **extra}
    return {"interaction": interaction, "event_type": "interaction.created"}


def status(iid: str, value: str = "in_progress", **extra: Any) -> dict[str, Any]:
    return {"interaction_id": iid, "status": value, **extra,
            "event_type": "interaction.status_update"}


def start(index: int, step: dict[str, Any]) -> dict[str, Any]:
    return {"index": index, "step": step, "event_type": "step.start"}


def delta(index: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"index": index, "delta": body, "event_type": "step.delta"}


def text(index: int, value: str) -> dict[str, Any]:
    return delta(index, {"text": value, "type": "text"})


def stop(index: int, **extra: Any) -> dict[str, Any]:
    return {"index": index, **extra, "event_type": "step.stop"}


def completed(iid: str, value: str = "completed", **extra: Any) -> dict[str, Any]:
    return {"interaction": {"id": iid, "status": value, **extra},
            "event_type": "interaction.completed"}


# --- the transcripts -------------------------------------------------------------------------

def thought_summary() -> Transcript:
    iid = "v1_ChdUaG91Z2h0U3VtbWFyeQ"
    return Transcript("thought_summary", [
        created(iid, created="2026-06-09T12:01:25Z"),
        status(iid),
        start(0, {"type": "thought", "signature": "",
                  "summary": [{"type": "text", "text": "**Recalling the light reactions**\n\n"}]}),
        delta(0, {"content": {"type": "text", "text": "The user wants a short explanation of "
                              "photosynthesis, so I will start with how light is captured."},
                  "type": "thought_summary"}),
        delta(0, {"signature": "EtQDCtEDAdHtim9vQm9mZmVyZWRUaG91Z2h0",
                  "type": "thought_signature"}),
        stop(0),
        start(1, {"type": "model_output", "content": [{"type": "text", "text": "Plants "}]}),
        text(1, "capture sunlight "),
        delta(1, {"text": "with chlorophyll "}),  # typeless delta, section 14.5
        text(1, "and store its energy as sugar."),
        stop(1),
        start(2, {"type": "thought", "signature": "EpYCCpMCAdHtim9TZWNvbmRUaG91Z2h0"}),
        stop(2),
        start(3, {"type": "model_output"}),
        text(3, " In short: light in, sugar out 🌱"),
        stop(3),
        completed(iid, usage={"total_tokens": 318, "total_input_tokens": 9,
                              "total_output_tokens": 41, "total_thought_tokens": 268}),
    ], done_marker=True)


SEARCH_SENTENCES = (
    "فازت إسبانيا ببطولة أمم أوروبا 2024 🏆 بعد فوزها على إنجلترا 2-1 في النهائي.",
    "وأصبح لامين يامال ⚽ أصغر لاعب يسجّل في تاريخ البطولة 🌟.",
)
SEARCH_TEXT = SEARCH_SENTENCES[0] + " " + SEARCH_SENTENCES[1]
SEARCH_SOURCES = (("https://www.uefa.com/euro2024/news/final-report", "uefa.com"),
                  ("https://ar.wikipedia.org/wiki/لامين_يامال", "ويكيبيديا"))


def search_grounding_ar() -> Transcript:
    iid = "v1_ChdTZWFyY2hHcm91bmRpbmdBcg"
    annotations = []
    for sentence, (url, title) in zip(SEARCH_SENTENCES, SEARCH_SOURCES, strict=True):
        s, e = byte_span(SEARCH_TEXT, sentence)
        annotations.append({"type": "url_citation", "url": url, "title": title,
                            "start_index": s, "end_index": e})
    first, second = SEARCH_SENTENCES[0] + " ", SEARCH_SENTENCES[1]
    cut = len(first) // 2
    return Transcript("search_grounding_ar", [
        created(iid),
        start(0, {"type": "thought", "signature": ""}),
        delta(0, {"signature": "EvEFCu4FU2VhcmNoVGhvdWdodA", "type": "thought_signature"}),
        stop(0),
        start(1, {"type": "google_search_call", "id": "srch_7f3a", "arguments": {},
                  "signature": ""}),
        delta(1, {"arguments": {"queries": ["الفائز ببطولة أمم أوروبا 2024", "لامين يامال هدف"]},
                  "type": "google_search_call"}),
        stop(1),
        start(2, {"type": "google_search_result", "call_id": "srch_7f3a", "result": [],
                  "signature": ""}),
        delta(2, {"signature": "Ep4BCpsBU2VhcmNoUmVzdWx0", "is_error": False,
                  "result": [{"search_suggestions": "<div class=\"chips\">🔎 يورو 2024</div>"}],
                  "type": "google_search_result"}),
        stop(2),
        start(3, {"type": "model_output"}),
        text(3, first[:cut]),
        text(3, first[cut:]),
        delta(3, {"annotations": [annotations[0]], "type": "text_annotation_delta"}),
        text(3, second),
        delta(3, {"annotations": [annotations[1]], "type": "text_annotation_delta"}),
        stop(3),
        completed(iid, usage={"total_tokens": 402, "total_input_tokens": 14,
                              "total_output_tokens": 57, "total_thought_tokens": 197,
                              "total_tool_use_tokens": 134,
                              "grounding_tool_count": [{"type": "google_search", "count": 2}]}),
    ])


# Several citations on one text block, overlapping and nested, one source cited twice, over
# CJK, Arabic and emoji (a ZWJ sequence, a flag) and a bold span: offsets are UTF-8 bytes.
CITATION_SENTENCES = (
    "**東京**は日本の首都です 🗼。",
    "北京是中国的首都，人口约2100万 👩\u200d💻。",
    "القاهرة هي عاصمة مصر 🇪🇬 وأكبر مدنها.",
    "All three are among the largest cities on Earth 🌍.",
)
CITATION_TEXT = " ".join(CITATION_SENTENCES)
CITATION_SOURCES = {
    "tokyo": ("https://www.metro.tokyo.lg.jp/english/", "東京都"),
    "beijing": ("https://www.beijing.gov.cn/", "北京市人民政府"),
    "cairo": ("https://ar.wikipedia.org/wiki/القاهرة", "القاهرة — ويكيبيديا"),
    "cities": ("https://www.un.org/development/desa/pd/", "UN World Urbanization Prospects"),
}
# (source, the cited text): each cited segment is found in CITATION_TEXT.
CITATIONS = (
    ("tokyo", CITATION_SENTENCES[0]),
    ("beijing", CITATION_SENTENCES[1]),
    ("cairo", CITATION_SENTENCES[2]),
    ("cities", " ".join(CITATION_SENTENCES[1:])),  # overlaps the two before and the last
    ("tokyo", "largest cities"),  # the same source again, elsewhere
    ("beijing", "人口约2100万 👩\u200d💻"),  # nested in its own source's span, ends after a ZWJ
)


def citation_annotations() -> list[dict[str, Any]]:
    out = []
    for source, segment in CITATIONS:
        url, title = CITATION_SOURCES[source]
        s, e = byte_span(CITATION_TEXT, segment)
        out.append({"type": "url_citation", "url": url, "title": title,
                    "start_index": s, "end_index": e})
    return out


def citations_multi() -> Transcript:
    iid = "v1_ChdDaXRhdGlvbnNNdWx0aQ"
    annotations = citation_annotations()
    cut = CITATION_TEXT.index("عاصمة")  # deltas end mid-sentence, in each script
    pieces = [CITATION_TEXT[:7], CITATION_TEXT[7:40], CITATION_TEXT[40:cut],
              CITATION_TEXT[cut:-20], CITATION_TEXT[-20:]]
    return Transcript("citations_multi", [
        created(iid),
        start(0, {"type": "google_search_call", "id": "srch_c1",
                  "arguments": {"queries": ["東京 首都", "北京 人口", "عاصمة مصر"]}}),
        stop(0),
        start(1, {"type": "google_search_result", "call_id": "srch_c1", "result": []}),
        delta(1, {"is_error": False, "type": "google_search_result",
                  "result": [{"search_suggestions": "<div class=\"chips\">🔎 東京 · 北京 · "
                              "القاهرة</div>"}]}),
        stop(1),
        start(2, {"type": "model_output"}),
        *[text(2, piece) for piece in pieces[:3]],
        delta(2, {"annotations": annotations[:2], "type": "text_annotation_delta"}),
        *[text(2, piece) for piece in pieces[3:]],
        delta(2, {"annotations": annotations[2:], "type": "text_annotation_delta"}),
        stop(2),
        completed(iid, usage={"total_tokens": 220, "total_input_tokens": 12,
                              "total_output_tokens": 80, "total_tool_use_tokens": 128}),
    ])


def image_output() -> Transcript:
    iid = "v1_ChdJbWFnZU91dHB1dA"
    return Transcript("image_output", [
        created(iid, model="gemini-3.1-flash-image"),
        start(0, {"type": "model_output", "content": [{"type": "text", "text": "Here is "}]}),
        text(0, "a tiny sunset gradient:"),
        delta(0, {"data": PNG_B64, "mime_type": "image/png", "type": "image"}),
        text(0, "Enjoy! 🎨"),
        stop(0),
        completed(iid, usage={"total_tokens": 1311, "total_input_tokens": 11,
                              "total_output_tokens": 1300,
                              "output_tokens_by_modality": [{"modality": "image", "tokens": 1290},
                                                            {"modality": "text", "tokens": 10}]}),
    ])


def _call(index: int, call_id: str, city: str) -> list[dict[str, Any]]:
    encoded = json.dumps({"location": city})
    pieces = [encoded[:5], encoded[5:14], encoded[14:]]
    return [start(index, {"type": "function_call", "id": call_id,
                          "name": "get_current_temperature", "arguments": {}}),
            *[delta(index, {"arguments": p, "type": "arguments_delta"}) for p in pieces],
            stop(index)]


def function_call() -> Transcript:
    iid = "v1_ChdGdW5jdGlvbkNhbGw"
    return Transcript("function_call", [
        created(iid), status(iid),
        start(0, {"type": "thought"}),
        delta(0, {"signature": "EsgBCsUBRnVuY3Rpb25UaG91Z2h0", "type": "thought_signature"}),
        stop(0),
        *_call(1, "call_abc123", "London"),
        completed(iid, "requires_action", usage={"total_tokens": 96, "total_input_tokens": 52,
                                                 "total_output_tokens": 15,
                                                 "total_thought_tokens": 29}),
    ])


def function_call_parallel() -> Transcript:
    iid = "v1_ChdQYXJhbGxlbENhbGxz"
    return Transcript("function_call_parallel", [
        created(iid),
        *_call(0, "call_par_1", "London"),
        *_call(1, "call_par_2", "Paris"),
        completed(iid, "requires_action", usage={"total_tokens": 80, "total_input_tokens": 52,
                                                 "total_output_tokens": 28}),
    ])


def function_call_followup() -> Transcript:
    iid = "v1_ChdGdW5jdGlvbkZvbGxvd3Vw"
    return Transcript("function_call_followup", [
        created(iid),
        start(0, {"type": "model_output"}),
        text(0, "The temperature "), text(0, "in London is "), text(0, "currently 22°C."),
        stop(0),
        completed(iid, usage={"total_tokens": 88, "total_input_tokens": 77,
                              "total_output_tokens": 11}),
    ])


def code_execution() -> Transcript:
    iid = "v1_ChdDb2RlRXhlY3V0aW9u"
    code = "print(sum(range(1, 101)))"
    return Transcript("code_execution", [
        created(iid), status(iid),
        start(0, {"type": "code_execution_call", "id": "exec_01", "arguments": {},
                  "signature": ""}),
        delta(0, {"arguments": {"code": code, "language": "python"},
                  "signature": "EroBCrcBQ29kZUNhbGw", "type": "code_execution_call"}),
        stop(0),
        start(1, {"type": "code_execution_result", "call_id": "exec_01", "result": ""}),
        delta(1, {"result": "5050\n", "is_error": False, "type": "code_execution_result"}),
        stop(1, step_usage={"total_tool_use_tokens": 12},
             usage={"total_tokens": 61, "total_input_tokens": 21, "total_tool_use_tokens": 12}),
        start(2, {"type": "model_output"}),
        text(2, "The sum of the numbers "), text(2, "from 1 to 100 is **5050**."),
        stop(2),
        completed(iid, usage={"total_tokens": 87, "total_input_tokens": 21,
                              "total_output_tokens": 54, "total_tool_use_tokens": 12}),
    ])


def unknown_types() -> Transcript:
    iid = "v1_ChdVbmtub3duVHlwZXM"
    reply = "Here is your hologram."
    return Transcript("unknown_types", [
        created(iid),
        {"interaction_id": iid, "beat": 1, "event_type": "interaction.heartbeat"},
        {"interaction": {"id": iid, "status": "in_progress"},
         "event_type": "interaction.in_progress"},
        start(0, {"type": "hologram_call", "id": "holo_1", "arguments": {"scene": "sunset"}}),
        delta(0, {"frame": 1, "data": "AAEC", "type": "hologram_frame"}),
        stop(0),
        start(1, {"type": "model_output", "content": [
            {"type": "hologram", "uri": "https://example.com/holo/1", "mime_type": "model/gltf"}]}),
        text(1, reply),
        delta(1, {"intensity": 0.7, "type": "sparkle"}),
        delta(1, {"annotations": [
            {"type": "hologram_citation", "scene_id": "s1", "start_index": 0,
             "end_index": len(reply.encode())},
            {"type": "url_citation", "url": "https://example.com/holo", "title": "Holo docs",
             "start_index": 0, "end_index": 4}], "type": "text_annotation_delta"}),
        stop(1),
        completed(iid, usage={"total_tokens": 40}),
    ])


def continuation_hop1() -> Transcript:
    iid = "v1_ChdDb250aW51YXRpb25Ib3Ax"
    return Transcript("continuation_hop1", [
        created(iid),
        status(iid, continuation_token="Q2hlY2twb2ludC0xLWhvcDE"),
        start(0, {"type": "model_output"}),
        text(0, "Part "), text(0, "one. "),
        stop(0),
        completed(iid, "requires_continuation", continuation_token="Q29udGludWUtaG9wMQ",
                  usage={"total_tokens": 14, "total_input_tokens": 10,
                         "total_output_tokens": 4, "initial_input_tokens": 10}),
    ])


def continuation_hop2() -> Transcript:
    iid = "v1_ChdDb250aW51YXRpb25Ib3Ay"
    return Transcript("continuation_hop2", [
        created(iid),
        start(0, {"type": "model_output"}),
        text(0, "Part "), text(0, "two."),
        stop(0),
        completed(iid, usage={"total_tokens": 19, "total_input_tokens": 15,
                              "total_output_tokens": 4}),
    ])


def error_event() -> Transcript:
    iid = "v1_ChdFcnJvckV2ZW50"
    return Transcript("error_event", [
        created(iid),
        start(0, {"type": "model_output"}),
        text(0, "Let me look "), text(0, "that up"),
        {"error": {"code": "gateway_timeout",
                   "message": "The model did not respond in time. Please try again."},
         "event_type": "error"},
    ])


TRANSCRIPTS = (thought_summary, search_grounding_ar, citations_multi, image_output, function_call,
               function_call_parallel, function_call_followup, code_execution, unknown_types,
               continuation_hop1, continuation_hop2, error_event)


def with_event_ids(transcript: Transcript) -> Transcript:
    """Give the events recorded-looking sparse ids (section 14.3)."""
    for n, event in enumerate(transcript.events):
        if wants_event_id(event):
            token = base64.urlsafe_b64encode(f"{transcript.name}/{n}".encode()).decode()
            event["event_id"] = token.rstrip("=")
            event["event_type"] = event.pop("event_type")  # keep event_type last, as recorded
    return transcript


def seed_image() -> dict[str, Any]:
    """Seed 002's image-generation response, with a real PNG instead of the placeholder."""
    return {"id": "v1_ChdJbWFnZVNlZWQ", "status": "completed",
            "steps": [{"type": "model_output",
                       "content": [{"type": "image", "data": PNG_B64, "mime_type": "image/png"}]}],
            "object": "interaction", "model": "gemini-3.1-flash-image"}


def generated_files() -> dict[str, str]:
    """File name -> exact file text for every generated fixture."""
    files = {f"{t.name}.sse": dump_sse(with_event_ids(t)) for t in (f() for f in TRANSCRIPTS)}
    files["seed_image.json"] = json.dumps(seed_image(), indent=2) + "\n"
    return files


def main() -> None:
    for name, content in generated_files().items():
        (FIXTURES / name).write_text(content, encoding="utf-8")
        print("wrote", FIXTURES / name)


if __name__ == "__main__":
    main()
