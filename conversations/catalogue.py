"""The models this server offers, the tools they can use, and which options each model takes:
the one owner of that knowledge (forms, services, payloads and the page all ask here)."""

import importlib.util
import os
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from conversations.local import MODEL_ID as LOCAL_MODEL_ID
from conversations.local.model_file import SHIPPED_NAME, shipped_model_path


@dataclass(frozen=True)
class Tool:
    name: str  # the tool's `type` on the wire (protocol section 3.4)
    label: str
    help: str


# The grounding tools a conversation can switch on. `file_search` is left out: it needs file
# search stores, which this app does not manage; `function`/`mcp_server` need code to run.
TOOLS = (
    Tool("google_search", "Google Search", "Ground replies in current web results, with sources."),
    Tool("url_context", "URL context", "Read the pages at the links in your message."),
    Tool("code_execution", "Code execution", "Write and run Python to work out the answer."),
    Tool("google_maps", "Google Maps", "Ground replies about places in Google Maps."),
)
TOOL_NAMES = tuple(tool.name for tool in TOOLS)

# generation_config keys (protocol section 3.3) that need no thinking or images.
SAMPLING = ("temperature", "top_p", "seed", "stop_sequences", "max_output_tokens")
THINKING = ("thinking_level", "thinking_summaries")
# Sent in response_format's image entry (section 3.5), not in generation_config.
IMAGE_OPTIONS = ("aspect_ratio", "image_size", "image_output")
ASPECT_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9",
                 "1:8", "8:1", "1:4", "4:1")
IMAGE_SIZES = ("512", "1K", "2K", "4K")


@dataclass(frozen=True)
class Model:
    id: str
    label: str
    local: bool = False  # answered by the offline model on this server
    tools: tuple[str, ...] = TOOL_NAMES
    thinks: bool = True  # takes a thinking level and thought summaries
    structured_output: bool = True  # takes a JSON schema for its reply
    makes_images: bool = False  # takes the image options
    sampling: tuple[str, ...] = SAMPLING

    @property
    def takes_thinking(self) -> bool:
        """Has a thinking level and thought summaries."""
        return self.thinks

    @property
    def keeps_history(self) -> bool:
        """`stateful` means something: the service keeps the interactions it answered."""
        return not self.local

    def takes(self, option: str) -> bool:
        return self.why_not(option) is None

    def why_not(self, option: str) -> str | None:
        """Why this model does not take a dialog option (a generation setting, a tool name,
        `response_schema` or `stateful`); None when it does."""
        if self.local:
            return LOCAL_REFUSALS.get(_kind(option))
        kind = _kind(option)
        if kind == "thinking" and not self.thinks:
            return f"{self.label} does not think before it answers."
        if kind == "images" and not self.makes_images:
            return f"Only image models make images: {self.label} does not take image options."
        if kind == "response_schema" and not self.structured_output:
            return f"{self.label} cannot be held to a JSON schema."
        if kind == "tools" and option not in self.tools:
            usable = ", ".join(tool.label for tool in TOOLS if tool.name in self.tools)
            return f"{self.label} can use {usable or 'no tools'} only."
        if option in SAMPLING and option not in self.sampling:
            return f"{self.label} does not take this setting."
        return None


def _kind(option: str) -> str:
    if option in THINKING:
        return "thinking"
    if option in IMAGE_OPTIONS:
        return "images"
    if option in TOOL_NAMES:
        return "tools"
    return option


# The offline model runs sampling settings (llama.cpp has them all) and none of the rest.
LOCAL_REFUSALS = {
    "thinking": "The offline model does not think before it answers.",
    "stateful": "The offline model keeps nothing upstream: it is sent the whole "
                "conversation every time.",
    "tools": "The offline model cannot search, read pages or run code: tools need a "
             "Gemini model.",
    "response_schema": "The offline model cannot be held to a JSON schema: structured "
                       "output needs a Gemini model.",
    "images": "The offline model does not make images.",
}

GEMINI_MODELS = (
    Model("gemini-3.5-flash", "Gemini 3.5 Flash"),
    Model("gemini-3-flash-preview", "Gemini 3 Flash (preview)"),
    Model("gemini-3.1-flash-image", "Gemini 3.1 Flash Image", tools=("google_search",),
          structured_output=False, makes_images=True,
          sampling=("temperature", "top_p", "seed", "max_output_tokens")),
)


def disabled_tools() -> frozenset[str]:
    """Tools an admin turned off for the whole site (DISABLED_TOOLS)."""
    return frozenset(settings.DISABLED_TOOLS)


def offered_tools() -> list[Tool]:
    """The tools the settings dialog offers: all but the site-disabled ones."""
    disabled = disabled_tools()
    return [tool for tool in TOOLS if tool.name not in disabled]


def usable_tools(model: "Model", names: list[str]) -> list[str]:
    """The tools of `names` a request to `model` carries: known, on site-wide, and taken by
    the model (a conversation may hold others from before a change of model or of site)."""
    disabled = disabled_tools()
    return [name for name in TOOL_NAMES
            if name in names and name not in disabled and model.takes(name)]


def tool_label(name: str) -> str:
    return next((tool.label for tool in TOOLS if tool.name == name), name)


def local_model_path() -> str | None:
    """The GGUF file the offline model runs: LOCAL_MODEL_PATH, else the shipped SmolLM2."""
    return settings.LOCAL_MODEL_PATH or shipped_model_path()


def local_model() -> Model:
    name = settings.LOCAL_MODEL_NAME
    if not name:
        path = settings.LOCAL_MODEL_PATH
        name = os.path.splitext(os.path.basename(path))[0] if path else SHIPPED_NAME
    return Model(LOCAL_MODEL_ID, f"{name} (offline)", local=True, tools=(), thinks=False,
                 structured_output=False)


def offline_engine_installed() -> bool:
    """False in an image built with OFFLINE_MODEL=0 (Dockerfile): no llama-cpp-python."""
    return importlib.util.find_spec("llama_cpp") is not None


def available_models(user: Any = None) -> list[Model]:
    """The model picker: the offline model if its engine is installed, plus Gemini when an
    API key is configured; with a user, only the models their access policy allows."""
    local = [local_model()] if offline_engine_installed() else []
    models = [*local, *(GEMINI_MODELS if settings.GEMINI_API_KEY else ())]
    if user is None:
        return models
    from conversations import policies  # here: policies imports this module (for labels)

    return policies.allowed_models(user, models)


def default_model(user: Any = None) -> str:
    """A new conversation's model: Gemini with a key, else the offline one; for a user,
    the first one they may use when that is not allowed to them."""
    default = GEMINI_MODELS[0].id if settings.GEMINI_API_KEY else LOCAL_MODEL_ID
    if user is None:
        return default
    allowed = [m.id for m in available_models(user)]
    # None allowed: keep the default, so the first message explains the refusal.
    return default if default in allowed or not allowed else allowed[0]


def model_info(model_id: str) -> Model:
    """What the catalogue knows of a model id; an unknown id is treated as a Gemini text
    model (it takes the text options; the upstream says if it does not)."""
    if model_id == LOCAL_MODEL_ID:
        return local_model()
    return next((m for m in GEMINI_MODELS if m.id == model_id), Model(model_id, model_id))
