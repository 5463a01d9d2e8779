"""Build the Interactions API request body for a turn."""

from collections.abc import Sequence

from .catalogue import model_info
from .models import GENERATION_SETTINGS, Conversation, Turn

# A parent whose interaction the upstream holds as a finished exchange we can chain onto.
CHAINABLE = {Turn.Status.COMPLETED, Turn.Status.INCOMPLETE, Turn.Status.REQUIRES_ACTION}

def generation_config(settings: dict) -> dict:
    """The conversation's generation settings that are set, as `generation_config`."""
    config = {key: settings[key] for key in GENERATION_SETTINGS
              if settings.get(key) not in (None, "")}
    if config.get("thinking_level"):
        config["thinking_summaries"] = "auto"
    return config


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
    body: dict = {"model": conversation.model}
    if conversation.system_instruction:
        body["system_instruction"] = conversation.system_instruction
    config = generation_config(conversation.generation_settings or {})
    if config:
        body["generation_config"] = config
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
