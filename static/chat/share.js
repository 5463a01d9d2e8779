// Sharing a chat read-only by link: its owner creates the link, copies it, or revokes it
// (the old link then answers 404). The link works only for people signed in to this site.

import { copyText, toast } from "./dom.js";
import { postForm } from "./sidebar.js";

const ANY_ID = "00000000-0000-0000-0000-000000000000";  // where the template's URLs take the id
const button = document.getElementById("share-button");
const dialog = document.getElementById("share-dialog");

/** Show whether the chat is shared (`link`: its address, or "" when it is not). */
function show(link) {
  const url = link ? new URL(link, location.href).href : "";
  for (const el of dialog.querySelectorAll(".share-on")) el.hidden = !url;
  for (const el of dialog.querySelectorAll(".share-off")) el.hidden = Boolean(url);
  dialog.querySelector("#share-link").value = url;
  button.classList.toggle("is-shared", Boolean(url));
  button.querySelector(".share-label").textContent = url ? "Shared" : "Share";
}

async function change(action) {
  const form = dialog.querySelector("form");
  form.action = dialog.dataset[action].replace(ANY_ID, document.body.dataset.conversationId);
  const result = await postForm(form);
  if (!result.ok) {
    toast(result.message);
    return;
  }
  show(result.data.url || "");
  toast(result.data.shared ? "Link created: anyone signed in with it can read this chat."
    : "Link revoked: it no longer opens this chat.", "info");
}

function init() {
  if (!button || !dialog) return;
  show(dialog.dataset.link);
  button.addEventListener("click", () => dialog.showModal());
  dialog.querySelector("form").addEventListener("submit", (e) => e.preventDefault());  // Enter in the link
  for (const close of dialog.querySelectorAll(".dialog-close")) {
    close.addEventListener("click", () => dialog.close());
  }
  dialog.addEventListener("click", (e) => {
    const action = e.target.closest("[data-action]");
    if (!action) return;
    if (action.dataset.action === "copy") copyText(dialog.querySelector("#share-link").value, action);
    else change(action.dataset.action);
  });
  // The new-chat page gets its conversation when the first message is sent (app.js).
  new MutationObserver(() => { button.hidden = !document.body.dataset.conversationId; })
    .observe(document.body, { attributes: true, attributeFilter: ["data-conversation-id"] });
}

init();
