import pytest

from conversations.local.repetition import LoopDetector


def loops(text: str, piece: int = 3) -> bool:
    detector = LoopDetector()
    return any(detector.feed(text[i:i + piece]) for i in range(0, len(text), piece))


@pytest.mark.parametrize("text", [
    "The dragon baked bread every morning. " * 5,
    "1234567890" * 20,
    "He invited the dragons of the land to join him, and " * 4,
    "ha " * 70,
])
def test_it_spots_a_reply_repeating_itself(text):
    assert loops(text)


@pytest.mark.parametrize("text", [
    "The dragon baked bread every morning. " * 2,  # said twice is not a loop
    "| --- " * 10 + "|\n",  # a markdown table's separator row
    "ha " * 10,
    " " * 300,  # blank space is not a loop of words
    "Once upon a time a dragon learned to bake. She burned the first loaf, then the second, "
    "and on the third morning the whole village came to taste it.",
])
def test_it_lets_ordinary_text_through(text):
    assert not loops(text)


def test_it_stays_looping_once_it_has_seen_a_loop():
    detector = LoopDetector()
    for _ in range(15):
        detector.feed("Again and again. ")
    assert detector.looping and detector.feed("Something new.")
