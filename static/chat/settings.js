// The conversation settings dialog: submitted with fetch, errors shown next to their field.

import { h, toast } from "./dom.js";
import { postForm } from "./sidebar.js";

let wired = false;
let saving = Promise.resolve();

/** Resolves when no settings save is in flight: a message waits for it, so it is
 * generated with the settings the user just chose. */
export function settingsSettled() {
  return saving;
}

/** The new-chat page has no settings form: borrow it from the new conversation's page. */
export async function loadSettingsDialog(config) {
  if (document.getElementById("settings-dialog")) return;
  try {
    const response = await fetch(config.url, { headers: { Accept: "text/html" } });
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const dialog = page.getElementById("settings-dialog");
    if (!dialog) return;
    document.body.append(document.adoptNode(dialog));
    initSettings(config);
  } catch {
    // the settings stay reachable after a reload
  }
}

/** Enable the settings button once there is a conversation to configure. */
export function initSettings(config) {
  const button = document.getElementById("settings-button");
  const dialog = document.getElementById("settings-dialog");
  const form = document.getElementById("settings-form");
  if (!button || !dialog || !form) return;
  if (config.settings_url) form.action = config.settings_url;
  button.hidden = !config.conversation;
  if (wired) return;
  wired = true;
  const model = form.elements.namedItem("model");
  if (model) model.addEventListener("change", () => markGeminiOnly(form));
  button.addEventListener("click", () => {
    clearErrors(form);
    markGeminiOnly(form);
    dialog.showModal();
  });
  for (const close of dialog.querySelectorAll(".dialog-close")) {
    close.addEventListener("click", () => dialog.close());
  }
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    clearErrors(form);
    // Close at once, so the chat is usable again; reopen if the server refuses.
    dialog.close();
    saving = postForm(form).then((result) => {
      if (result.ok) {
        toast("Settings saved.", "info");
        const model = document.getElementById("chat-model");
        if (model && result.data.conversation) model.textContent = result.data.conversation.model_label;
        return;
      }
      dialog.showModal();
      showErrors(form, result.data.errors || { __all__: [result.message] });
    });
  });
}

/** Settings the offline model does not take are disabled for it, saying why. A disabled
 * field is not posted: the server clears the thinking level and keeps "stateful" as it was. */
function markGeminiOnly(form) {
  const model = form.elements.namedItem("model");
  if (!model) return;
  const local = (model.dataset.localModels || "").split(" ").includes(model.value);
  for (const input of form.querySelectorAll("[data-gemini-only]")) {
    input.disabled = local;
    const field = input.closest(".field");
    const note = field.querySelector(".gemini-only-note");
    if (local && !note) {
      field.append(h("p", { class: "help muted gemini-only-note" }, input.dataset.geminiOnly));
    } else if (!local && note) {
      note.remove();
    }
  }
}

function clearErrors(form) {
  for (const el of form.querySelectorAll(".field-error, .form-errors")) el.remove();
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
}

function showErrors(form, errors) {
  const general = [];
  for (const [field, messages] of Object.entries(errors)) {
    const input = form.elements.namedItem(field);
    if (!input || !input.closest) {
      general.push(...messages);
      continue;
    }
    input.setAttribute("aria-invalid", "true");
    const id = `${input.id || field}-error`;
    input.setAttribute("aria-describedby", id);
    input.closest(".field").append(h("p", { class: "field-error", id }, messages.join(" ")));
  }
  if (general.length) form.prepend(h("div", { class: "form-errors", role: "alert" }, general.join(" ")));
  const first = form.querySelector("[aria-invalid]");
  if (first) first.focus();
}
