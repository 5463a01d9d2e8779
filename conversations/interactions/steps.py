"""Steps of an Interaction (user input, model output, thoughts, tool calls and results)."""

from __future__ import annotations

from typing import Any

from .content import Content, content_list
from .wrappers import RawWrapper, field, pick


class Step(RawWrapper):
    __slots__ = ()
    type = field("type")
    signature = field("signature")


class UserInputStep(Step):
    __slots__ = ()

    @property
    def content(self) -> list[Content]:
        return content_list(self.raw.get("content"))


class ModelOutputStep(UserInputStep):
    __slots__ = ()
    error = field("error")


class ThoughtStep(Step):
    __slots__ = ()

    @property
    def summary(self) -> list[Content]:
        return content_list(self.raw.get("summary"))


class CallStep(Step):
    """A call the model made: a client `function_call` or a server tool call."""

    __slots__ = ()
    id = field("id")
    name = field("name")
    server_name = field("server_name")
    arguments = field("arguments")


class FunctionCallStep(CallStep):
    __slots__ = ()


class ResultStep(Step):
    """The answer to a call, linked by `call_id`."""

    __slots__ = ()
    call_id = field("call_id")
    result = field("result")
    name = field("name")
    is_error = field("is_error")


class FunctionResultStep(ResultStep):
    __slots__ = ()


class UnknownStep(Step):
    __slots__ = ()


# Server-side tools come in call/result pairs with the same shape.
SERVER_TOOLS = (
    "code_execution",
    "url_context",
    "google_search",
    "google_maps",
    "file_search",
    "mcp_server_tool",
    "retrieval",
    "processing",
)

STEP_TYPES: dict[str, type[Step]] = {
    "user_input": UserInputStep,
    "model_output": ModelOutputStep,
    "thought": ThoughtStep,
    "function_call": FunctionCallStep,
    "function_result": FunctionResultStep,
    **{f"{tool}_call": CallStep for tool in SERVER_TOOLS},
    **{f"{tool}_result": ResultStep for tool in SERVER_TOOLS},
}


def parse_step(d: dict[str, Any]) -> Step:
    return pick(STEP_TYPES, d.get("type"), UnknownStep)(d)
