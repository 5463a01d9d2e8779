"""Which engine build and which CPU the offline model's tests ran with, said at the end of
the test run: a native-code crash shows on one kind of CPU only, so the report names both."""

import platform
import sys
from pathlib import Path

INTERESTING_FLAGS = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16",
                     "amx_tile", "amx_int8", "amx_bf16")
_worker: dict = {}


def record(info: dict) -> None:
    """Keep what a real worker process reported when it loaded the model."""
    _worker.update(info)


def cpu() -> tuple[str, list[str]]:
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                name = value.strip()
            elif key.strip() in ("flags", "Features"):
                flags = set(value.split())
    except OSError:
        pass
    return name, [f for f in INTERESTING_FLAGS if f in flags]


def lines() -> list[str]:
    if not _worker:
        return []
    build = Path(sys.prefix, "engine-cmake-args.txt")
    flags_used = build.read_text().strip() if build.exists() else "unknown (not built by make)"
    name, flags = cpu()
    return [
        f"build flags: {flags_used}",
        f"llama.cpp: {_worker.get('system_info')}",
        f"CPU: {name}; features: {' '.join(flags) or 'none of note'}",
        f"model: {_worker.get('model')} loaded in {_worker.get('load_ms')} ms, "
        f"chat template from {_worker.get('template')}",
    ]
