"""The models this server offers and what each of them takes: the one owner of that list."""

import importlib.util
import os
from dataclasses import dataclass

from django.conf import settings

from conversations.local import MODEL_ID as LOCAL_MODEL_ID
from conversations.local.model_file import SHIPPED_NAME, shipped_model_path


@dataclass(frozen=True)
class Model:
    id: str
    label: str
    local: bool = False  # answered by the offline model on this server

    @property
    def takes_thinking(self) -> bool:
        """Has a thinking level and thought summaries."""
        return not self.local

    @property
    def keeps_history(self) -> bool:
        """`stateful` means something: the service keeps the interactions it answered."""
        return not self.local


GEMINI_MODELS = (
    Model("gemini-3.5-flash", "Gemini 3.5 Flash"),
    Model("gemini-3-flash-preview", "Gemini 3 Flash (preview)"),
    Model("gemini-3.1-flash-image", "Gemini 3.1 Flash Image"),
)


def local_model_path() -> str | None:
    """The GGUF file the offline model runs: LOCAL_MODEL_PATH, else the shipped SmolLM2."""
    return settings.LOCAL_MODEL_PATH or shipped_model_path()


def local_model() -> Model:
    name = settings.LOCAL_MODEL_NAME
    if not name:
        path = settings.LOCAL_MODEL_PATH
        name = os.path.splitext(os.path.basename(path))[0] if path else SHIPPED_NAME
    return Model(LOCAL_MODEL_ID, f"{name} (offline)", local=True)


def offline_engine_installed() -> bool:
    """False in an image built with OFFLINE_MODEL=0 (Dockerfile): no llama-cpp-python."""
    return importlib.util.find_spec("llama_cpp") is not None


def available_models() -> list[Model]:
    """The model picker: the offline model if its engine is installed, plus Gemini when an
    API key is configured."""
    local = [local_model()] if offline_engine_installed() else []
    return [*local, *(GEMINI_MODELS if settings.GEMINI_API_KEY else ())]


def default_model() -> str:
    return GEMINI_MODELS[0].id if settings.GEMINI_API_KEY else LOCAL_MODEL_ID


def model_info(model_id: str) -> Model:
    """What the catalogue knows of a model id; an unknown id is treated as a Gemini model."""
    if model_id == LOCAL_MODEL_ID:
        return local_model()
    return next((m for m in GEMINI_MODELS if m.id == model_id), Model(model_id, model_id))
