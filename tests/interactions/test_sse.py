"""SSE framing: our byte-level decoder agrees with httpx-sse on any chunking."""

import random

import httpx
import pytest
from httpx_sse import EventSource

from conversations.interactions.sse import SSEDecoder

EOLS = ["\n", "\r\n", "\r"]


def random_stream(rng: random.Random, events: int = 30) -> str:
    out = []
    for n in range(events):
        eol = rng.choice(EOLS)
        lines = []
        if rng.random() < 0.8:
            lines.append(f"event: step.delta{n}")
        if rng.random() < 0.2:
            lines.append(": keep-alive")
        if rng.random() < 0.2:
            lines.append(f"id: sse-{n}")
        if rng.random() < 0.1:
            lines.append("retry: 1000")
        for part in range(rng.choice([1, 1, 1, 2, 3])):
            value = rng.choice([f'{{"n": {n}, "t": "é ✓ {part}"}}', "", " spaced", "[DONE]"])
            lines.append(rng.choice(["data: ", "data:"]) + value if value else "data")
        rng.shuffle(lines)
        out.append(eol.join(lines) + eol + eol * rng.choice([1, 1, 2]))
    return "".join(out)


def chunked(data: bytes, rng: random.Random) -> list[bytes]:
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 60))))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def ours(chunks: list[bytes]) -> list[str]:
    decoder = SSEDecoder()
    out = [d for c in chunks for d in decoder.feed(c)] + decoder.flush()
    return [d.decode() for d in out if d]


async def theirs(chunks: list[bytes]) -> list[str]:
    class Body(httpx.AsyncByteStream):
        async def __aiter__(self):
            for c in chunks:
                yield c

    response = httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Body())
    return [sse.data async for sse in EventSource(response).aiter_sse() if sse.data]


@pytest.mark.parametrize("seed", range(40))
async def test_it_frames_like_httpx_sse(seed):
    rng = random.Random(seed)
    data = random_stream(rng).encode()
    chunks = chunked(data, rng)
    assert ours(chunks) == await theirs(chunks)


def test_it_handles_the_canonical_shape_in_one_chunk():
    body = b'event: step.delta\ndata: {"a":1}\n\nevent: done\ndata: [DONE]\n\n'
    assert SSEDecoder().feed(body) == [b'{"a":1}', b"[DONE]"]


def test_it_joins_multi_line_data():
    assert SSEDecoder().feed(b"data: {\ndata: }\n\n") == [b"{\n}"]


def test_it_drops_a_leading_bom_even_when_split():
    decoder = SSEDecoder()
    assert decoder.feed(b"\xef\xbb") == []
    assert decoder.feed(b"\xbfdata: x\n\n") == [b"x"]


def test_it_discards_an_unterminated_event_at_eof():
    decoder = SSEDecoder()
    assert decoder.feed(b"data: complete\n\ndata: cut") == [b"complete"]
    assert decoder.flush() == []


def test_a_final_cr_ends_the_last_event():
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\r\r") == []  # the last CR may be half of a CRLF
    assert decoder.flush() == [b"x"]
