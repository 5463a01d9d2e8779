"""Citations: every recorded transcript's annotations land on the right text block and cut it
at UTF-8 byte offsets that are character boundaries."""

import pytest

from conversations.interactions import Assembler, parse_annotation, parse_event
from devtools.fake_upstream import build_fixtures as bf
from devtools.fake_upstream import transcripts


def text_blocks(name: str) -> list[dict]:
    """The text blocks of a fixture's reply, as our assembler folds its stream."""
    assembler = Assembler()
    for hop in transcripts.load(name):
        assembler.feed_all(parse_event(e) for e in hop.events)
    return [b for s in assembler.steps for b in s.get("content") or []
            if isinstance(b, dict) and b.get("type") == "text"]


CITED = [n for n in transcripts.fixture_names()
         if any(b.get("annotations") for b in text_blocks(n))]


def test_the_fixtures_with_citations_are_the_ones_expected():
    assert CITED == ["citations_multi", "search_grounding_ar", "seed_google_search",
                     "unknown_types"]


@pytest.mark.parametrize("name", CITED)
def test_every_citation_cuts_its_block_at_character_boundaries(name):
    for block in text_blocks(name):
        raw = block["text"].encode()
        for annotation in block.get("annotations") or []:
            start, end = annotation["start_index"], annotation["end_index"]
            assert 0 <= start < end <= len(raw), annotation
            for offset in (start, end):  # never inside a character's bytes
                assert offset == len(raw) or raw[offset] & 0xC0 != 0x80, annotation
            assert "\ufffd" not in parse_annotation(annotation).span(block["text"])


def test_several_overlapping_citations_on_one_block_cite_exactly_their_text():
    [block] = text_blocks("citations_multi")
    assert block["text"] == bf.CITATION_TEXT
    spans = [(a["url"], parse_annotation(a).span(block["text"])) for a in block["annotations"]]
    assert spans == [(bf.CITATION_SOURCES[s][0], text) for s, text in bf.CITATIONS]
    # Characters and bytes differ here: the offsets are bytes, and a character count would
    # cut the text elsewhere.
    assert block["annotations"][1]["start_index"] != bf.CITATION_TEXT.index(
        bf.CITATION_SENTENCES[1])


def test_the_arabic_transcript_cites_each_sentence():
    [block] = text_blocks("search_grounding_ar")
    assert [parse_annotation(a).span(block["text"]) for a in block["annotations"]] == list(
        bf.SEARCH_SENTENCES)
