"""A fake Gemini Interactions API upstream for tests and benchmarks (see server.py)."""

from tests.fake_upstream.config import Config, Fault
from tests.fake_upstream.records import Record
from tests.fake_upstream.server import FakeUpstream
from tests.fake_upstream.transcripts import Transcript, long_text

__all__ = ["Config", "FakeUpstream", "Fault", "Record", "Transcript", "long_text"]
