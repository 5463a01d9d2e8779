import sys

from django.test import override_settings

from conversations import catalogue
from conversations.local import shipped_model_path


def ids():
    return [m.id for m in catalogue.available_models()]


@override_settings(GEMINI_API_KEY="")
def test_it_offers_only_the_local_model_without_a_key():
    assert ids() == ["local"]
    assert catalogue.default_model() == "local"


@override_settings(GEMINI_API_KEY="key")
def test_it_offers_gemini_with_a_key():
    assert ids() == ["local", "gemini-3.5-flash", "gemini-3-flash-preview",
                     "gemini-3.1-flash-image"]
    assert catalogue.default_model() == "gemini-3.5-flash"


@override_settings(GEMINI_API_KEY="key")
def test_an_image_built_without_the_offline_model_offers_only_gemini(monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # as if it were not installed
    assert ids() == ["gemini-3.5-flash", "gemini-3-flash-preview", "gemini-3.1-flash-image"]
    assert catalogue.default_model() == "gemini-3.5-flash"


@override_settings(LOCAL_MODEL_PATH="", LOCAL_MODEL_NAME="")
def test_the_shipped_model_is_the_default():
    assert catalogue.local_model_path() == shipped_model_path()
    assert catalogue.local_model().label == "SmolLM2 135M (offline)"


@override_settings(LOCAL_MODEL_PATH="/srv/models/Qwen2.5-3B-Instruct-Q4_K_M.gguf",
                   LOCAL_MODEL_NAME="")
def test_a_model_file_of_the_teams_is_named_after_the_file():
    assert catalogue.local_model_path() == "/srv/models/Qwen2.5-3B-Instruct-Q4_K_M.gguf"
    assert catalogue.local_model().label == "Qwen2.5-3B-Instruct-Q4_K_M (offline)"


@override_settings(LOCAL_MODEL_PATH="/srv/models/q.gguf", LOCAL_MODEL_NAME="Qwen 3B")
def test_the_local_model_can_be_given_a_display_name():
    assert catalogue.local_model().label == "Qwen 3B (offline)"


def test_only_gemini_models_think_and_keep_history():
    local, gemini = catalogue.model_info("local"), catalogue.model_info("gemini-3.5-flash")
    assert local.local and not local.takes_thinking and not local.keeps_history
    assert not gemini.local and gemini.takes_thinking and gemini.keeps_history
    assert not catalogue.model_info("gemini-9-future").local


def test_each_model_takes_its_own_options():
    image, gemini = catalogue.model_info("gemini-3.1-flash-image"), catalogue.model_info(
        "gemini-3.5-flash")
    assert image.takes("aspect_ratio") and image.takes("google_search")
    assert not image.takes("url_context") and not image.takes("response_schema")
    assert not image.takes("stop_sequences") and image.takes("thinking_level")
    assert gemini.takes("response_schema") and gemini.takes("google_maps")
    assert "image models" in gemini.why_not("image_size")
    future = catalogue.model_info("gemini-9-future")  # the text options; upstream says no
    assert future.takes("code_execution") and not future.takes("aspect_ratio")


def test_the_offline_model_takes_only_sampling_settings():
    local = catalogue.local_model()
    taken = [o for o in ("temperature", "top_p", "seed", "stop_sequences", "max_output_tokens",
                         "thinking_level", "thinking_summaries", "aspect_ratio", "google_search",
                         "response_schema", "stateful") if local.takes(o)]
    assert taken == ["temperature", "top_p", "seed", "stop_sequences", "max_output_tokens"]
    assert "structured output needs a Gemini model" in local.why_not("response_schema")
