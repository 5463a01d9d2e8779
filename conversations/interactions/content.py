"""Content blocks (text, media) and the annotations (citations, markup) on text blocks."""

from __future__ import annotations

from typing import Any

from .wrappers import RawWrapper, field, pick

# --------------------------------------------------------------------------- annotations


class Annotation(RawWrapper):
    """A citation or markup span on a text block; indexes are UTF-8 byte offsets."""

    __slots__ = ()
    type = field("type")
    start_index = field("start_index")
    end_index = field("end_index")

    def span(self, text: str) -> str:
        """The annotated part of `text` (offsets count bytes, not characters)."""
        encoded = text.encode()
        start = self.start_index or 0
        end = len(encoded) if self.end_index is None else self.end_index
        return encoded[start:end].decode(errors="replace")


class UrlCitation(Annotation):
    __slots__ = ()
    url = field("url")
    title = field("title")


class FileCitation(Annotation):
    __slots__ = ()
    document_uri = field("document_uri")
    file_name = field("file_name")
    source = field("source")
    page_number = field("page_number")


class PlaceCitation(Annotation):
    __slots__ = ()
    place_id = field("place_id")
    name = field("name")
    url = field("url")


class SpeechMetadata(Annotation):
    __slots__ = ()
    speaker = field("speaker")
    style = field("style")


class WordInfo(Annotation):
    __slots__ = ()
    text = field("text")
    speaker = field("speaker")


class UnknownAnnotation(Annotation):
    __slots__ = ()


ANNOTATION_TYPES: dict[str, type[Annotation]] = {
    "url_citation": UrlCitation,
    "file_citation": FileCitation,
    "place_citation": PlaceCitation,
    "speech_metadata": SpeechMetadata,
    "word_info": WordInfo,
}


def parse_annotation(d: dict[str, Any]) -> Annotation:
    return pick(ANNOTATION_TYPES, d.get("type"), UnknownAnnotation)(d)


# --------------------------------------------------------------------------- content


class Content(RawWrapper):
    __slots__ = ()
    type = field("type")


class TextContent(Content):
    __slots__ = ()

    @property
    def text(self) -> str:
        return self.raw.get("text") or ""

    @property
    def annotations(self) -> list[Annotation]:
        return [parse_annotation(a) for a in self.raw.get("annotations") or ()]


class MediaContent(Content):
    """Image, audio, video or document: inline base64 `data` or a `uri`."""

    __slots__ = ()
    data = field("data")
    uri = field("uri")
    mime_type = field("mime_type")


class ImageContent(MediaContent):
    __slots__ = ()


class AudioContent(MediaContent):
    __slots__ = ()


class VideoContent(MediaContent):
    __slots__ = ()


class DocumentContent(MediaContent):
    __slots__ = ()


class UnknownContent(Content):
    __slots__ = ()


CONTENT_TYPES: dict[str, type[Content]] = {
    "text": TextContent,
    "image": ImageContent,
    "audio": AudioContent,
    "video": VideoContent,
    "document": DocumentContent,
}


def parse_content(d: dict[str, Any]) -> Content:
    return pick(CONTENT_TYPES, d.get("type"), UnknownContent)(d)


def content_list(value: Any) -> list[Content]:
    # REST samples send user_input content as a plain string (protocol 13.9).
    if isinstance(value, str):
        return [TextContent({"type": "text", "text": value})]
    if isinstance(value, dict):
        return [parse_content(value)]
    return [parse_content(c) for c in value or ()]
