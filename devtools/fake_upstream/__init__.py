"""A fake Gemini Interactions API upstream for tests and benchmarks (see server.py)."""

from devtools.fake_upstream.config import Config, Fault
from devtools.fake_upstream.records import Record
from devtools.fake_upstream.server import FakeUpstream
from devtools.fake_upstream.transcripts import Transcript, long_text

__all__ = ["Config", "FakeUpstream", "Fault", "Record", "Transcript", "long_text"]
