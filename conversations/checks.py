"""System checks: a misspelt DISABLED_TOOLS entry would silently leave that tool on."""

from typing import Any

from django.conf import settings
from django.core.checks import Error, register

from conversations.catalogue import TOOL_NAMES


@register()
def check_disabled_tools(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    unknown = sorted(set(settings.DISABLED_TOOLS) - set(TOOL_NAMES))
    if not unknown:
        return []
    return [Error(f"DISABLED_TOOLS names unknown tools: {', '.join(unknown)}.",
                  hint=f"Known tools: {', '.join(TOOL_NAMES)}.", id="conversations.E001")]
