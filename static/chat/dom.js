// Tiny DOM helpers: build elements without innerHTML, so text is never parsed as markup.

/**
 * h("button", {class: "x", type: "button", "aria-label": "Send", onclick: fn}, "text", child)
 * Attributes set to null/undefined/false are skipped; `on*` functions become listeners.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      el.className = value;
    } else if (value === true) {
      el.setAttribute(name, "");
    } else {
      el.setAttribute(name, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

let toastBox = null;

/** A short message at the bottom of the screen, read out by screen readers. */
export function toast(message, kind = "error") {
  if (!toastBox) toastBox = document.querySelector(".toasts");
  if (!toastBox) {
    toastBox = h("div", { class: "toasts", role: "status", "aria-live": "polite" });
    document.body.append(toastBox);
  }
  const item = h("div", { class: `toast toast-${kind}` }, message);
  toastBox.append(item);
  setTimeout(() => item.classList.add("leaving"), 5000);
  setTimeout(() => item.remove(), 5400);
}

/** Let the server's flash messages (rendered into the page) fade like our own toasts. */
export function fadeServerToasts() {
  for (const item of document.querySelectorAll(".toasts .toast")) {
    setTimeout(() => item.classList.add("leaving"), 5000);
    setTimeout(() => item.remove(), 5400);
  }
}

export async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // Clipboard API needs a secure context; fall back to a hidden textarea.
    const area = h("textarea", { class: "offscreen", "aria-hidden": "true" });
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  if (button) {
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 1500);
  }
}

/** Compact number: 1234 -> "1.2k". */
export function formatCount(n) {
  if (n < 1000) return String(n);
  if (n < 1_000_000) return `${(n / 1000).toFixed(n < 10_000 ? 1 : 0)}k`;
  return `${(n / 1_000_000).toFixed(1)}M`;
}
