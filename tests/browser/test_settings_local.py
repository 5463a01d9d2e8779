"""The settings dialog with the offline model: what it does not take is disabled, saying why."""

from playwright.sync_api import expect

from tests.browser.test_chat import new_chat


def test_settings_the_offline_model_ignores_are_disabled_and_explained(alice_page, site):
    page = alice_page
    conversation_id = new_chat(page, model="gemini-3.5-flash")
    page.get_by_role("button", name="Conversation settings").click()
    dialog = page.get_by_role("dialog", name="Conversation settings")
    thinking, stateful = dialog.get_by_label("Thinking level"), dialog.get_by_label(
        "Stateful conversation")
    expect(thinking).to_be_enabled()
    thinking.select_option("high")

    dialog.get_by_label("Model").select_option("local")

    expect(thinking).to_be_disabled()
    expect(stateful).to_be_disabled()
    expect(dialog.get_by_text("The offline model does not think before")).to_be_visible()
    expect(dialog.get_by_text("The offline model keeps nothing upstream")).to_be_visible()
    dialog.get_by_role("button", name="Save").click()
    expect(page.locator("#chat-model")).to_have_text("SmolLM2 135M (offline)")  # saved
    row = site.query("SELECT model, stateful, generation_settings FROM conversations_conversation"
                     " WHERE id = ?", conversation_id.replace("-", ""))[0]
    assert row[0] == "local" and row[1] == 1  # stateful kept as it was
    assert '"thinking_level": ""' in row[2]  # cleared, not silently kept

    page.get_by_role("button", name="Conversation settings").click()
    dialog.get_by_label("Model").select_option("gemini-3.5-flash")
    expect(thinking).to_be_enabled()
    expect(stateful).to_be_enabled()
    expect(dialog.get_by_text("The offline model does not think")).to_have_count(0)
