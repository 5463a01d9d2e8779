"""Spot a small model stuck in a loop, so it stops early instead of at its token cap."""

from __future__ import annotations

# A loop is the same stretch of text, at least MIN_REPEATS times in a row, covering at least
# MIN_SPAN characters at the end of the reply: "ha ha ha" stays, a paragraph written for the
# third time, or a phrase for the thirtieth, does not. Markdown tables repeat short cells,
# which is why the span is long.
MIN_REPEATS = 3
MIN_SPAN = 180
MAX_PERIOD = 400  # longest repeated stretch looked for, in characters
_WINDOW = MAX_PERIOD * MIN_REPEATS
_KEY = 4  # characters matched to find candidate periods


class LoopDetector:
    """Feed the reply piece by piece; `looping` turns true once its tail repeats itself."""

    def __init__(self) -> None:
        self._tail = ""
        self.looping = False

    def feed(self, piece: str) -> bool:
        self._tail = (self._tail + piece)[-_WINDOW:]
        if not self.looping and len(self._tail) >= MIN_SPAN:
            self.looping = _repeats(self._tail)
        return self.looping


def _repeats(text: str) -> bool:
    """True when text ends with one stretch repeated back to back over MIN_SPAN characters."""
    end = len(text)
    key = text[-_KEY:]
    # Candidate periods: where else the last few characters occur (a repeat must match there).
    at = text.rfind(key, 0, end - 1)
    while at >= 0 and (period := end - _KEY - at) <= MAX_PERIOD:
        copies = max(MIN_REPEATS, -(-MIN_SPAN // period))  # ceil: the span in whole copies
        unit = text[end - period :]
        if period * copies <= end and text.endswith(unit * copies) and unit.strip():
            return True
        at = text.rfind(key, 0, at + _KEY - 1)
    return False
