"""Small real files of each kind the uploads accept (and some they refuse), made here."""

import io
import struct
import wave
import zlib


def png(width: int = 2, height: int = 2, rgb: bytes = b"\xd0\x30\x30") -> bytes:
    """A valid PNG any browser can show (a red square by default)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = b"".join(b"\x00" + rgb * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


def wav(frames: int = 800) -> bytes:
    """A tenth of a second of silence, 8 kHz mono."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * frames)
    return out.getvalue()


def pdf() -> bytes:
    return (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
            b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")


def ftyp(brand: bytes) -> bytes:
    """The start of an ISO base media file (MP4, MOV, HEIC…) with this major brand."""
    return struct.pack(">I", 24) + b"ftyp" + brand + b"\0\0\0\0" + brand + b"isom" + b"\0" * 64


# name -> (bytes, kind, MIME type the upload must be stored as)
ACCEPTED = {
    "cat.png": (png(), "image", "image/png"),
    "cat.jpg": (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
                + b"\0" * 64 + b"\xff\xd9", "image", "image/jpeg"),
    "cat.gif": (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "image", "image/gif"),
    "cat.webp": (b"RIFF\x1a\x00\x00\x00WEBPVP8 \x0e\x00\x00\x00" + b"\0" * 20, "image",
                 "image/webp"),
    "cat.heic": (ftyp(b"heic"), "image", "image/heic"),
    "cat.heif": (ftyp(b"mif1"), "image", "image/heif"),
    "purr.wav": (wav(), "audio", "audio/wav"),
    "purr.mp3": (b"ID3\x03\x00\x00\x00\x00\x00\x0a" + b"\0" * 10 + b"\xff\xfb\x90\x00"
                 + b"\0" * 400, "audio", "audio/mp3"),
    "purr.aac": (b"\xff\xf1\x50\x80\x02\x1f\xfc" + b"\0" * 200, "audio", "audio/aac"),
    "purr.ogg": (b"OggS\x00\x02" + b"\0" * 20 + b"\x01\x1e\x01vorbis" + b"\0" * 64, "audio",
                 "audio/ogg"),
    "purr.flac": (b"fLaC\x00\x00\x00\x22" + b"\0" * 64, "audio", "audio/flac"),
    "play.mp4": (ftyp(b"isom"), "video", "video/mp4"),
    "play.mov": (ftyp(b"qt  "), "video", "video/mov"),
    "play.webm": (bytes.fromhex("1a45dfa3") + b"\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2"
                  b"\x81\x04\x42\xf3\x81\x08\x42\x82\x84webm\x42\x87\x81\x04\x42\x85\x81\x02"
                  + b"\0" * 32, "video", "video/webm"),
    "paper.pdf": (pdf(), "document", "application/pdf"),
    # Starts like a BMP image ("BM"), but is text.
    "notes.txt": ("BMX notes: Grüße\n".encode(), "document", "text/plain"),
    "table.csv": (b"name,lives\ncat,9\n", "document", "text/csv"),
    "readme.md": (b"# Title\n\nSome *markdown*.\n", "document", "text/markdown"),
}

ELF = b"\x7fELF\x02\x01\x01\x00" + b"\0" * 8 + b"\x02\x00\x3e\x00" + b"\0" * 100
WINDOWS_EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\0" * 100
