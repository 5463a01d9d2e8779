"""Forms of the chat pages: they parse input; the services validate and write."""

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from conversations import catalogue, services
from conversations.models import GENERATION_SETTINGS, Conversation

THINKING_CHOICES = [("", "Model default")] + [
    (level, level.capitalize()) for level in services.THINKING_LEVELS[1:]
]


GEMINI_ONLY = {
    "thinking_level": "The offline model does not think before it answers.",
    "stateful": "The offline model keeps nothing upstream: it is sent the whole "
    "conversation every time.",
}


def _unavailable_label(model_id: str) -> str:
    if model_id in {m.id for m in catalogue.available_models()}:
        return f"{catalogue.model_info(model_id).label} (not allowed for your account)"
    return f"{model_id} (unavailable)"


class RenameForm(forms.Form):
    title = forms.CharField(max_length=200)


class SettingsForm(forms.Form):
    model = forms.ChoiceField()
    system_instruction = forms.CharField(
        required=False,
        max_length=services.MAX_SYSTEM_INSTRUCTION,
        widget=forms.Textarea(attrs={"rows": 5, "placeholder": "You are a helpful assistant…"}),
    )
    temperature = forms.FloatField(
        required=False,
        widget=forms.NumberInput(
            attrs={"min": 0, "max": 2, "step": 0.05, "placeholder": "Default"}
        ),
    )
    thinking_level = forms.ChoiceField(choices=THINKING_CHOICES, required=False)
    max_output_tokens = forms.IntegerField(
        required=False,
        widget=forms.NumberInput(
            attrs={"min": 1, "max": services.MAX_OUTPUT_TOKENS, "placeholder": "Default"}
        ),
    )
    stateful = forms.BooleanField(
        required=False,
        help_text="Keep the history on Google's servers and send only the new message. "
        "Off: the whole history is sent every time and nothing is stored upstream.",
    )

    def __init__(self, *args: Any, conversation: Conversation, user: Any,
                 **kwargs: Any) -> None:
        generation = conversation.generation_settings or {}
        kwargs.setdefault(
            "initial",
            {
                "model": conversation.model,
                "system_instruction": conversation.system_instruction,
                **{key: unset if generation.get(key) is None else generation[key]
                   for key, unset in GENERATION_SETTINGS.items()},
                "stateful": conversation.stateful,
            },
        )
        super().__init__(*args, **kwargs)
        models = catalogue.available_models(user)  # only those the user's policy allows
        choices = [(m.id, m.label) for m in models]
        if conversation.model not in {c[0] for c in choices}:
            # Still shown, so the form does not silently switch models; saving it explains why not.
            choices.append((conversation.model, _unavailable_label(conversation.model)))
        self.fields["model"].choices = choices
        # Which fields mean nothing to the offline model: the page disables them for it.
        self.fields["model"].widget.attrs["data-local-models"] = " ".join(
            m.id for m in models if m.local)
        for name, why in GEMINI_ONLY.items():
            self.fields[name].widget.attrs["data-gemini-only"] = why

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        keeps_history = catalogue.model_info(data["model"]).keeps_history
        return {
            "model": data["model"],
            "system_instruction": data["system_instruction"],
            "generation_settings": {key: data[key] if data[key] not in (None, "") else unset
                                    for key, unset in GENERATION_SETTINGS.items()},
            # Disabled (so not sent) for a model it means nothing to: keep what was chosen.
            "stateful": data["stateful"] if keeps_history else None,
        }

    def add_service_errors(self, error: ValidationError) -> None:
        """Attach a service's ValidationError to the matching fields (or the form)."""
        if not hasattr(error, "error_dict"):
            self.add_error(None, error)
            return
        for field, errors in error.error_dict.items():
            self.add_error(field if field in self.fields else None, errors)
