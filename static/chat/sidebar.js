// The conversation list: live search, inline rename, delete with confirmation, the
// phone menu, and the theme toggle. Every action also works as a plain form post.

import { h, toast } from "./dom.js";

const THEME_KEY = "chatsite-theme";

export function initSidebar() {
  initSearch();
  initMenu();
  initTheme();
  initFiles();
  const list = document.getElementById("conversation-list");
  if (!list) return;
  list.addEventListener("click", onListClick);
  list.addEventListener("submit", onListSubmit);
  markCurrent();
}

let searches = 0;  // a slower answer to an earlier search must not replace a newer one

/** Replace the list with the server's rendering for the current search (titles and what
 * was said, each result with a snippet of the matching message). */
export async function refreshSidebar() {
  const form = document.getElementById("sidebar-search");
  const list = document.getElementById("conversation-list");
  if (!form || !list) return;
  const q = form.querySelector("input[name=q]").value;
  const url = `${form.dataset.searchUrl}?${new URLSearchParams({ q })}`;
  const search = ++searches;
  try {
    const response = await fetch(url, { headers: { Accept: "text/html" } });
    if (!response.ok) return;
    const html = await response.text();
    if (search !== searches) return;
    list.innerHTML = html;  // our own server-rendered, escaped template
    markCurrent();
  } catch {
    // offline: keep the list we have
  }
}

export function setSidebarTitle(id, title) {
  const item = document.querySelector(`.conv[data-id="${CSS.escape(id || "")}"]`);
  if (!item) return;
  item.dataset.title = title || "";
  item.querySelector(".conv-link").textContent = title || "New chat";
}

function markCurrent() {
  const current = document.body.dataset.conversationId;
  const exportMenu = document.getElementById("export-menu");
  if (exportMenu) exportMenu.hidden = !current;  // the new-chat page gains one on sending
  for (const item of document.querySelectorAll(".conv")) {
    const link = item.querySelector(".conv-link");
    if (item.dataset.id === current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function initSearch() {
  const form = document.getElementById("sidebar-search");
  if (!form) return;
  let timer = 0;
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    refreshSidebar();
  });
  form.querySelector("input[name=q]").addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(refreshSidebar, 200);
  });
}

function onListClick(e) {
  const rename = e.target.closest(".rename-button");
  if (rename) startRename(rename.closest(".conv"));
}

function onListSubmit(e) {
  const form = e.target;
  if (!form.classList.contains("delete-form")) return;
  e.preventDefault();
  const item = form.closest(".conv");
  confirmDelete(item.querySelector(".conv-link").textContent.trim()).then((ok) => {
    if (ok) deleteConversation(form, item);
  });
}

function startRename(item) {
  const link = item.querySelector(".conv-link");
  const form = h("form", { class: "rename-form", method: "post", action: item.dataset.renameUrl });
  const input = h("input", { name: "title", value: link.textContent.trim(), maxlength: 200,
    "aria-label": "Conversation title", required: true });
  form.append(csrfInput(item), input);
  link.hidden = true;
  item.classList.add("renaming");
  link.after(form);
  input.focus();
  input.select();
  const finish = () => {
    form.remove();
    link.hidden = false;
    item.classList.remove("renaming");
  };
  let done = false;
  const save = async () => {
    if (done) return;
    done = true;
    const title = input.value.trim();
    if (!title || title === link.textContent.trim()) return finish();
    const result = await postForm(form);
    if (result.ok) {
      link.textContent = result.data.conversation.title;
      item.dataset.title = result.data.conversation.title;
    }
    else toast(result.message);
    finish();
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    save();
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      done = true;
      finish();
      link.focus();
    }
  });
  input.addEventListener("blur", save);
}

async function deleteConversation(form, item) {
  const result = await postForm(form);
  if (!result.ok) {
    toast(result.message);
    return;
  }
  if (item.dataset.id === document.body.dataset.conversationId) {
    window.location.assign(result.data.redirect || "/");
    return;
  }
  item.remove();
}

/** A modal "Delete this chat?" dialog; resolves true when confirmed. */
function confirmDelete(title) {
  const dialog = document.getElementById("confirm-delete");
  dialog.querySelector(".confirm-title").textContent = title;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "delete"), { once: true });
  });
}

/** POST a form with fetch, asking for JSON; never throws. */
export async function postForm(form) {
  try {
    const response = await fetch(form.action, {
      method: "POST", body: new FormData(form), headers: { Accept: "application/json" },
    });
    const data = await response.json().catch(() => ({}));
    if (response.ok) return { ok: true, data };
    return { ok: false, data, message: errorMessage(data) || `The server said ${response.status}.` };
  } catch {
    return { ok: false, data: {}, message: "Could not reach the server." };
  }
}

function errorMessage(data) {
  const errors = data && data.errors;
  if (!errors) return data && (data.error || data.message);
  return Object.values(errors).flat().join(" ");
}

function csrfInput(item) {
  const token = item.querySelector("input[name=csrfmiddlewaretoken]");
  return h("input", { type: "hidden", name: "csrfmiddlewaretoken", value: token ? token.value : "" });
}

/** Exports of this chat or of the chats listed, and importing an export file. */
function initFiles() {
  const exportMenu = document.getElementById("export-menu");
  if (exportMenu) exportMenu.addEventListener("toggle", () => {
    const id = encodeURIComponent(document.body.dataset.conversationId || "");
    for (const link of exportMenu.querySelectorAll("a[data-format]")) {
      link.href = `/c/${id}/export?format=${link.dataset.format}`;
    }
  });
  const chatsMenu = document.getElementById("chats-menu");
  if (chatsMenu) chatsMenu.addEventListener("toggle", () => {
    if (chatsMenu.open) describeListedExports(chatsMenu);
  });
  for (const menu of document.querySelectorAll(".popmenu")) {
    menu.addEventListener("click", (e) => {
      if (e.target.closest("a")) menu.open = false;  // the download starts; the menu is done
    });
  }
  document.addEventListener("click", (e) => {
    for (const menu of document.querySelectorAll(".popmenu[open]")) {
      if (!menu.contains(e.target)) menu.open = false;
    }
  });
  const file = document.getElementById("import-file");
  if (file) file.addEventListener("change", () => {
    if (file.files.length) importFile(file.form);
  });
}

/** While a search is on, "export" means the chats it lists (at most the search's page). */
function describeListedExports(menu) {
  const searching = document.querySelector("#sidebar-search input[name=q]").value.trim();
  const ids = [...document.querySelectorAll("#conversation-list .conv")].map((c) => c.dataset.id);
  for (const link of menu.querySelectorAll(".export-listed")) {
    const kind = link.dataset.format === "json" ? "JSON" : "Markdown (zip)";
    const params = new URLSearchParams({ format: link.dataset.format });
    if (searching) for (const id of ids) params.append("id", id);
    link.href = `${link.dataset.url}?${params}`;
    link.textContent = searching ? `Export the ${ids.length} chats listed as ${kind}`
      : `Export all chats as ${kind}`;
    link.hidden = searching && !ids.length;
  }
}

async function importFile(form) {
  toast("Importing…", "info");
  const result = await postForm(form);
  form.reset();
  if (!result.ok) {
    toast(result.message);
    return;
  }
  window.location.assign(result.data.redirect);  // the page shows the import's notes
}

function initMenu() {
  const button = document.getElementById("menu-button");
  const backdrop = document.getElementById("sidebar-backdrop");
  if (!button) return;
  const setOpen = (open) => {
    document.body.classList.toggle("sidebar-open", open);
    button.setAttribute("aria-expanded", String(open));
  };
  button.addEventListener("click", () => setOpen(!document.body.classList.contains("sidebar-open")));
  backdrop.addEventListener("click", () => setOpen(false));
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape") setOpen(false);
  });
}

function initTheme() {
  const button = document.getElementById("theme-toggle");
  if (!button) return;
  const current = () => document.documentElement.dataset.theme
    || (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
  const show = () => button.setAttribute("aria-pressed", String(current() === "dark"));
  button.addEventListener("click", () => {
    const next = current() === "dark" ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    try {
      localStorage.setItem(THEME_KEY, next);
    } catch {
      // private mode: the choice lasts for this page only
    }
    show();
  });
  show();
}
