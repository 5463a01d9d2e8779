"""Build the Interactions API request body for a turn."""

from collections.abc import Sequence

from .catalogue import model_info
from .models import Conversation, Turn

# A parent whose interaction the upstream holds as a finished exchange we can chain onto.
CHAINABLE = {Turn.Status.COMPLETED, Turn.Status.INCOMPLETE, Turn.Status.REQUIRES_ACTION}

GENERATION_KEYS = ("temperature", "thinking_level", "max_output_tokens")


def generation_config(settings: dict) -> dict:
    config = {key: settings[key] for key in GENERATION_KEYS if settings.get(key) not in (None, "")}
    if config.get("thinking_level"):
        config["thinking_summaries"] = "auto"
    return config


def user_step(turn: Turn) -> dict:
    return {"type": "user_input", "content": turn.input}


def history(ancestors: Sequence[Turn]) -> list[dict]:
    """The steps of a branch, model steps replayed exactly as they were received."""
    steps: list[dict] = []
    for turn in ancestors:
        steps.append(user_step(turn))
        steps.extend(turn.steps)
    return steps


def request_body(conversation: Conversation, turn: Turn, ancestors: Sequence[Turn], *,
                 replay: bool = False) -> dict:
    """Stateful turns send only their input and chain on the parent's interaction.

    Stateless conversations (`store: false`), models that keep no history (the offline
    one), parents the upstream cannot chain on, and `replay=True` (the previous
    interaction expired) send the whole branch.
    """
    body: dict = {"model": conversation.model}
    if conversation.system_instruction:
        body["system_instruction"] = conversation.system_instruction
    config = generation_config(conversation.generation_settings or {})
    if config:
        body["generation_config"] = config
    parent = ancestors[-1] if ancestors else None
    stateful = conversation.stateful and model_info(conversation.model).keeps_history
    chain = (stateful and not replay and parent is not None
             and parent.interaction_id and parent.status in CHAINABLE)
    if chain:
        body["previous_interaction_id"] = parent.interaction_id
        body["input"] = [user_step(turn)]
    else:
        body["input"] = history(ancestors) + [user_step(turn)]
    if not stateful:
        body["store"] = False
    return body
