"""Forms of the chat pages: they parse input; the services validate and write."""

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from conversations import catalogue, options, policies, services
from conversations.models import GENERATION_SETTINGS, Conversation

DEFAULT = [("", "Model default")]
THINKING_CHOICES = DEFAULT + [(level, level.capitalize()) for level in options.THINKING_LEVELS[1:]]
SUMMARY_CHOICES = DEFAULT + [("auto", "Show summaries"), ("none", "No summaries")]
ASPECT_CHOICES = DEFAULT + [(ratio, ratio) for ratio in catalogue.ASPECT_RATIOS]
SIZE_CHOICES = DEFAULT + [(size, size) for size in catalogue.IMAGE_SIZES]
IMAGE_OUTPUT_CHOICES = [("", "Image and text"), ("image", "Image only")]
SCHEMA_PLACEHOLDER = '{"type": "object", "properties": {"name": {"type": "string"}}}'
TOOL_PREFIX = "tool_"

# The dialog's sections, in order, and the fields in each (tools are added per tool).
GROUPS = (
    ("Model", ("model", "stateful")),
    ("Instructions", ("system_instruction",)),
    ("Tools", ()),
    ("Output", ("response_schema", "image_output", "aspect_ratio", "image_size",
                "max_output_tokens", "stop_sequences")),
    ("Thinking", ("thinking_level", "thinking_summaries")),
    ("Sampling", ("temperature", "top_p", "seed")),
)


def _number(**attrs: Any) -> forms.NumberInput:
    return forms.NumberInput(attrs={"placeholder": "Default", **attrs})


def _unavailable_label(model_id: str) -> str:
    if model_id in {m.id for m in catalogue.available_models()}:
        return f"{catalogue.model_info(model_id).label} (not allowed for your account)"
    return f"{model_id} (unavailable)"


class RenameForm(forms.Form):
    title = forms.CharField(max_length=200)


class SettingsForm(forms.Form):
    model = forms.ChoiceField()
    stateful = forms.BooleanField(
        required=False, label="Stateful conversation",
        help_text="Keep the history on Google's servers and send only the new message. "
        "Off: the whole history is sent every time and nothing is stored upstream.",
    )
    system_instruction = forms.CharField(
        required=False,
        max_length=services.MAX_SYSTEM_INSTRUCTION,
        widget=forms.Textarea(attrs={"rows": 5, "placeholder": "You are a helpful assistant…"}),
    )
    response_schema = forms.CharField(
        required=False, label="Response schema (JSON Schema)",
        help_text="The reply will be JSON following this schema. Empty: free text.",
        widget=forms.Textarea(attrs={"rows": 6, "placeholder": SCHEMA_PLACEHOLDER,
                                     "spellcheck": "false", "class": "mono"}),
    )
    image_output = forms.ChoiceField(choices=IMAGE_OUTPUT_CHOICES, required=False)
    aspect_ratio = forms.ChoiceField(choices=ASPECT_CHOICES, required=False)
    image_size = forms.ChoiceField(choices=SIZE_CHOICES, required=False)
    max_output_tokens = forms.IntegerField(
        required=False, widget=_number(min=1, max=options.MAX_OUTPUT_TOKENS))
    stop_sequences = forms.CharField(
        required=False, help_text="One per line: the reply ends before the first it writes.",
        widget=forms.Textarea(attrs={"rows": 2, "class": "short"}),
    )
    thinking_level = forms.ChoiceField(choices=THINKING_CHOICES, required=False)
    thinking_summaries = forms.ChoiceField(
        choices=SUMMARY_CHOICES, required=False, label="Thought summaries",
        help_text="Show what the model thought about, above its reply.")
    temperature = forms.FloatField(required=False, widget=_number(min=0, max=2, step=0.05))
    top_p = forms.FloatField(required=False, label="Top-p",
                             widget=_number(min=0, max=1, step=0.05))
    seed = forms.IntegerField(required=False, help_text="The same seed and settings give "
                              "the same reply more often (not always).",
                              widget=_number(min=options.SEED_MIN, max=options.SEED_MAX))

    def __init__(self, *args: Any, conversation: Conversation, user: Any,
                 **kwargs: Any) -> None:
        self.conversation = conversation
        kwargs.setdefault("initial", self._initial(conversation))
        super().__init__(*args, **kwargs)
        # A site-disabled tool is not offered at all, nor one the user's policy refuses.
        allowed = set(policies.allowed_tools(user, [t.name for t in catalogue.offered_tools()]))
        for tool in (t for t in catalogue.offered_tools() if t.name in allowed):
            self.fields[TOOL_PREFIX + tool.name] = forms.BooleanField(
                required=False, label=tool.label, help_text=tool.help,
                initial=tool.name in (conversation.tools or []))
        models = catalogue.available_models(user)  # only those the user's policy allows
        choices = [(m.id, m.label) for m in models]
        if conversation.model not in {c[0] for c in choices}:
            # Still shown, so the form does not silently switch models; saving it explains why not.
            choices.append((conversation.model, _unavailable_label(conversation.model)))
        self.fields["model"].choices = choices
        self._mark_options(models)

    @staticmethod
    def _initial(conversation: Conversation) -> dict[str, Any]:
        generation = conversation.generation_settings or {}
        initial = {key: unset if generation.get(key) is None else generation[key]
                   for key, unset in GENERATION_SETTINGS.items()}
        initial["stop_sequences"] = "\n".join(generation.get("stop_sequences") or [])
        schema = conversation.response_schema
        return {**initial, "model": conversation.model, "stateful": conversation.stateful,
                "system_instruction": conversation.system_instruction,
                "response_schema": "" if schema is None else json.dumps(schema, indent=2)}

    def _mark_options(self, models: list[catalogue.Model]) -> None:
        """Tell the page which fields each model does not take, and why: it disables them
        (with the reason beside them) when that model is picked."""
        unsupported = {}
        for model in models:
            reasons = {name: why for name in self.fields
                       if (why := model.why_not(self.option_of(name)))}
            unsupported[model.id] = reasons
        self.fields["model"].widget.attrs["data-unsupported"] = json.dumps(unsupported)
        self.fields["model"].widget.attrs["data-local-models"] = " ".join(
            m.id for m in models if m.local)

    @staticmethod
    def option_of(field: str) -> str:
        """The catalogue's name for what a field sets."""
        return field.removeprefix(TOOL_PREFIX)

    def groups(self) -> list[tuple[str, list[forms.BoundField]]]:
        """The dialog's sections with their fields; an empty section is left out."""
        tools = [name for name in self.fields if name.startswith(TOOL_PREFIX)]
        sections = []
        for title, names in GROUPS:
            fields = [self[name] for name in (tools if title == "Tools" else names)]
            if fields:
                sections.append((title, fields))
        return sections

    def clean_response_schema(self) -> dict | None:
        text = self.cleaned_data["response_schema"].strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ValidationError(
                f"This is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).",
                code="json") from None

    def clean_stop_sequences(self) -> list[str] | None:
        # Only blank lines are dropped: a stop sequence may begin or end with a space.
        lines = [line for line in self.cleaned_data["stop_sequences"].splitlines() if line.strip()]
        return lines or None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        off = [name for name in catalogue.disabled_tools() if self.data.get(TOOL_PREFIX + name)]
        if off:  # posted by a page from before the change, or by hand
            self.add_error(None, options.disabled_tools_message(off))
        return data

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        model = catalogue.model_info(data["model"])
        kwargs: dict[str, Any] = {
            "model": data["model"],
            "system_instruction": data["system_instruction"],
            "generation_settings": {key: unset if options.is_unset(key, data[key]) else data[key]
                                    for key, unset in GENERATION_SETTINGS.items()},
            # Disabled (so not sent) for a model it means nothing to: keep what was chosen.
            "stateful": data["stateful"] if model.keeps_history else None,
            "tools": self._tools(model),
        }
        if "response_schema" in self.data:  # not posted: disabled, so kept as it was
            kwargs["response_schema"] = data["response_schema"]
        return kwargs

    def _tools(self, model: catalogue.Model) -> list[str] | None:
        """The tools switched on; those the model does not take (their boxes are disabled)
        stay as they were, and the offline model (which takes none) changes nothing."""
        if not model.tools:
            return None
        before = self.conversation.tools or []
        return [tool.name for tool in catalogue.offered_tools()
                if (self.cleaned_data[TOOL_PREFIX + tool.name] if model.takes(tool.name)
                    else tool.name in before)]

    def add_service_errors(self, error: ValidationError) -> None:
        """Attach a service's ValidationError to the matching fields (or the form)."""
        if not hasattr(error, "error_dict"):
            self.add_error(None, error)
            return
        for field, errors in error.error_dict.items():
            self.add_error(field if field in self.fields else None, errors)
