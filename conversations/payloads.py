"""Build the Interactions API request body for a turn."""

from collections.abc import Sequence

from .catalogue import SAMPLING, THINKING, Model, model_info, usable_tools
from .models import Conversation, Turn
from .options import is_unset

# A parent whose interaction the upstream holds as a finished exchange we can chain onto.
CHAINABLE = {Turn.Status.COMPLETED, Turn.Status.INCOMPLETE, Turn.Status.REQUIRES_ACTION}

GENERATION_CONFIG_KEYS = (*SAMPLING, *THINKING)


def generation_config(settings: dict, model: Model) -> dict:
    """The conversation's generation settings that are set and that `model` takes, as
    `generation_config` (the image options go in `response_format`)."""
    config = {key: settings[key] for key in GENERATION_CONFIG_KEYS
              if not is_unset(key, settings.get(key)) and model.takes(key)}
    # Conversations saved before thinking_summaries was a setting of its own got summaries
    # whenever a level was picked: they keep that until their settings are saved again.
    if "thinking_summaries" not in settings and config.get("thinking_level"):
        config["thinking_summaries"] = "auto"
    return config


def tools(names: list[str], model: Model) -> list[dict]:
    """The conversation's tools that are on site-wide and that `model` takes. Sent with every
    turn: the service does not carry them over from the previous interaction."""
    return [{"type": name} for name in usable_tools(model, names or [])]


def image_format(settings: dict, model: Model) -> dict | None:
    """The `response_format` entry of an image model's options (None: all at defaults)."""
    if not model.makes_images:
        return None
    entry = {key: settings[key] for key in ("aspect_ratio", "image_size") if settings.get(key)}
    if not entry and settings.get("image_output") != "image":
        return None
    return {"type": "image", **entry}


def response_format(conversation: Conversation, model: Model) -> dict | list[dict] | None:
    """One entry per output asked for (protocol section 3.5): JSON text following the
    conversation's schema, and/or images; a single entry goes alone, not in a list."""
    settings = conversation.generation_settings or {}
    entries: list[dict] = []
    if conversation.response_schema is not None and model.takes("response_schema"):
        entries.append({"type": "text", "mime_type": "application/json",
                        "schema": conversation.response_schema})
    image = image_format(settings, model)
    if image is not None:
        # Listing only the image entry is what asks for images without text.
        if not entries and settings.get("image_output") != "image":
            entries.append({"type": "text"})
        entries.append(image)
    if not entries:
        return None
    return entries[0] if len(entries) == 1 else entries


def sent_schema(body: dict) -> dict | None:
    """The JSON Schema a request body asks the reply to follow, if any."""
    formats = body.get("response_format")
    for entry in formats if isinstance(formats, list) else [formats]:
        if isinstance(entry, dict) and entry.get("type") == "text" and "schema" in entry:
            return entry["schema"]
    return None


# This app does not run functions yet; a call the model made is answered with this error,
# sent with the next message, so the conversation can go on.
NO_FUNCTIONS = "This chat does not run functions, so this call was not made."


def user_step(turn: Turn) -> dict:
    return {"type": "user_input", "content": turn.input}


def function_results(turn: Turn) -> list[dict]:
    """Error results for the function calls a `requires_action` turn left unanswered."""
    if turn.status != Turn.Status.REQUIRES_ACTION:
        return []
    answered = {s.get("call_id") for s in turn.steps if s.get("type") == "function_result"}
    return [{"type": "function_result", "call_id": step["id"], "name": step.get("name", ""),
             "result": NO_FUNCTIONS, "is_error": True}
            for step in turn.steps
            if step.get("type") == "function_call" and step.get("id") not in answered]


def history(ancestors: Sequence[Turn]) -> list[dict]:
    """The steps of a branch, model steps replayed exactly as they were received."""
    steps: list[dict] = []
    for turn in ancestors:
        steps.append(user_step(turn))
        steps.extend(turn.steps)
        steps.extend(function_results(turn))
    return steps


def replays(conversation: Conversation, parent: Turn | None, *, replay: bool = False) -> bool:
    """Whether a turn after `parent` sends the whole branch rather than chaining on it.

    Stateful turns send only their input and chain on the parent's interaction. Stateless
    conversations (`store: false`), models that keep no history (the offline one), parents
    the upstream cannot chain on, and `replay=True` (the previous interaction expired)
    send the branch."""
    return not (stateful(conversation) and not replay and parent is not None
                and parent.interaction_id and parent.status in CHAINABLE)


def stateful(conversation: Conversation) -> bool:
    return conversation.stateful and model_info(conversation.model).keeps_history


def request_body(conversation: Conversation, turn: Turn, parent: Turn | None,
                 ancestors: Sequence[Turn] | None = None, *, replay: bool = False) -> dict:
    """The request for `turn`, after `parent`. `ancestors` (root first, up to the parent) is
    needed only when the body replays the branch (`replays`)."""
    model = model_info(conversation.model)
    body: dict = {"model": conversation.model}
    if conversation.system_instruction:
        body["system_instruction"] = conversation.system_instruction
    config = generation_config(conversation.generation_settings or {}, model)
    if config:
        body["generation_config"] = config
    if grounding := tools(conversation.tools, model):
        body["tools"] = grounding
    if (formats := response_format(conversation, model)) is not None:
        body["response_format"] = formats
    if not replays(conversation, parent, replay=replay):
        body["previous_interaction_id"] = parent.interaction_id  # type: ignore[union-attr]
        body["input"] = [*function_results(parent), user_step(turn)]  # type: ignore[arg-type]
    elif parent is None:
        body["input"] = [user_step(turn)]
    elif ancestors is None:
        raise ValueError(f"turn {turn.pk}: replaying the branch needs its turns")
    else:
        body["input"] = history(ancestors) + [user_step(turn)]
    if not stateful(conversation):
        body["store"] = False
    return body
