"""The offline backend: a GGUF model run by llama.cpp in a supervised worker process, yielding
the same events as the Interactions API (no Django)."""

from .engine import MODEL_ID, LocalEngine, LocalModelBusy
from .model_file import local_model_available, shipped_model_path
from .prompt import messages_from_input

__all__ = [
    "MODEL_ID",
    "LocalEngine",
    "LocalModelBusy",
    "local_model_available",
    "messages_from_input",
    "shipped_model_path",
]
