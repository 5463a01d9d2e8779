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
  if (model) model.addEventListener("change", () => markUnsupported(form));
  const open = () => {
    clearErrors(form);
    markUnsupported(form);
    dialog.showModal();
  };
  button.addEventListener("click", open);
  const line = document.getElementById("active-settings");
  if (line) line.addEventListener("click", open);
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
        const saved = result.data.conversation;
        const model = document.getElementById("chat-model");
        if (model && saved) model.textContent = saved.model_label;
        if (saved) showActiveSettings(saved);
        return;
      }
      dialog.showModal();
      showErrors(form, result.data.errors || { __all__: [result.message] });
    });
  });
}

/** Options the chosen model does not take are disabled, with the reason beside them (the
 * server lists them per model on the model picker). A disabled field is not posted: the
 * server clears such a generation setting and keeps tools, schema and "stateful" as they were. */
function markUnsupported(form) {
  const model = form.elements.namedItem("model");
  if (!model) return;
  let unsupported = {};
  try {
    unsupported = JSON.parse(model.dataset.unsupported || "{}")[model.value] || {};
  } catch {
    // an old page: nothing is disabled, and the server still refuses what does not fit
  }
  for (const note of form.querySelectorAll(".unsupported-note")) note.remove();
  for (const group of form.querySelectorAll(".settings-group")) {
    const inputs = [...group.querySelectorAll(".field")]
      .map((field) => field.querySelector("input, select, textarea"))
      .filter((input) => input && input !== model);
    const reasons = inputs.map((input) => unsupported[input.name] || "");
    inputs.forEach((input, i) => { input.disabled = Boolean(reasons[i]); });
    // One reason for a whole section (all its tools, say) is said once, under its title.
    if (inputs.length > 1 && reasons[0] && reasons.every((r) => r === reasons[0])) {
      group.querySelector("legend").after(note(reasons[0]));
      continue;
    }
    // Fields side by side with one reason (the image options, say) share one note, after the last.
    inputs.forEach((input, i) => {
      if (reasons[i] && reasons[i] !== reasons[i + 1]) input.closest(".field").append(note(reasons[i]));
    });
  }
}

function note(text) {
  return h("p", { class: "help muted unsupported-note" }, text);
}

/** The line above the composer: what the next message is sent with, one click from the
 * dialog. The server words it (`active_settings`); empty: the line is hidden. */
export function showActiveSettings(conversation) {
  const line = document.getElementById("active-settings");
  if (!line || !conversation || !Array.isArray(conversation.active_settings)) return;
  const items = conversation.active_settings;
  line.hidden = !items.length;
  line.replaceChildren(h("span", { class: "offscreen" }, "Active settings (opens the settings):"),
    ...items.map((item) => h("span", { class: "active-item" }, item)));
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
