// Files in the composer (picked, dropped or pasted): each uploads at once to POST /files/
// with its progress shown on its chip; a refused one shows the server's message there. And
// the attachment blocks of a sent message: thumbnail, player or document chip.

import { h } from "./dom.js";

// Types the browser can show as a thumbnail before the upload (HEIC cannot: an icon).
export const PREVIEWABLE = new Set(["image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"]);
const ICONS = { image: "🖼", audio: "🎵", video: "🎬", document: "📄" };
const FILE_URL = /^\/files\/([0-9a-f-]{36})\/$/;  // our own file view, nothing else
let filesBase = "/files/";

/** Fetch this page's stored files from `base` + id + "/": a shared link's page has its own
 * (/shared/<token>/files/), as /files/ serves only the owner and reviewers. */
export function serveFilesFrom(base) { filesBase = base; }

/** Where this page fetches a block's stored file (`ref` = block.attachment), or null when
 * it is not one of ours. */
export function fileUrl(ref) {
  const match = ref && typeof ref.url === "string" && FILE_URL.exec(ref.url);
  return match ? `${filesBase}${match[1]}/` : null;
}

export function formatSize(bytes) {
  if (!Number.isFinite(bytes)) return "";
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB"];
  let value = bytes;
  let unit = "B";
  for (const next of units) {
    if (value < 1024) break;
    value /= 1024;
    unit = next;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${unit}`;
}

function kindOf(mime) {
  const top = (mime || "").split("/")[0];
  return ICONS[top] && top !== "document" ? top : "document";
}

/** The composer's files. `onChange` is called whenever what can be sent changes. */
export class ComposerFiles {
  constructor({ list, picker, button, zones, onChange }) {
    this.list = list;
    this.picker = picker;
    this.onChange = onChange;
    this.items = [];   // {file, chip, block, error, xhr, preview}
    this.enabled = true;
    button.addEventListener("click", () => { if (this.enabled) picker.click(); });
    picker.addEventListener("change", () => {
      this.add([...picker.files]);
      picker.value = "";  // the same file may be picked again after removing it
    });
    for (const zone of zones) this.acceptDrops(zone);
  }

  acceptDrops(zone) {
    const carriesFiles = (e) => e.dataTransfer && [...e.dataTransfer.types].includes("Files");
    zone.addEventListener("dragover", (e) => {
      if (!carriesFiles(e)) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = this.enabled ? "copy" : "none";
      document.body.classList.toggle("dragging-files", this.enabled);
    });
    zone.addEventListener("dragleave", (e) => {
      if (!zone.contains(e.relatedTarget)) document.body.classList.remove("dragging-files");
    });
    zone.addEventListener("drop", (e) => {
      document.body.classList.remove("dragging-files");
      if (!carriesFiles(e)) return;
      e.preventDefault();
      if (this.enabled) this.add([...e.dataTransfer.files]);
    });
  }

  /** Files pasted into the textarea (a screenshot, a copied file); text pastes as usual. */
  paste(event) {
    const files = [...((event.clipboardData && event.clipboardData.files) || [])];
    if (!files.length || !this.enabled) return;
    event.preventDefault();
    this.add(files);
  }

  add(files) {
    for (const file of files) {
      const item = { file, block: null, error: null, xhr: null, loaded: 0 };
      if (PREVIEWABLE.has(file.type)) item.preview = URL.createObjectURL(file);
      this.place(item);
      this.upload(item);
    }
    this.changed();
  }

  /** Put back files of a message the server refused, so nothing is lost. */
  restore(blocks) {
    for (const block of blocks) {
      if (this.items.some((i) => i.block && i.block.attachment.id === block.attachment.id)) continue;
      const a = block.attachment;
      const item = { file: { name: a.name, size: a.size, type: block.mime_type }, block, error: null };
      if (PREVIEWABLE.has(block.mime_type) && FILE_URL.test(a.url)) item.preview = a.url;
      this.place(item);
    }
    this.changed();
  }

  place(item) {
    item.chip = this.chip(item);
    this.items.push(item);
    this.list.append(item.chip);
    this.show(item);
  }

  upload(item) {
    const form = new FormData();
    form.append("file", item.file, item.file.name);
    const xhr = new XMLHttpRequest();
    item.xhr = xhr;
    xhr.open("POST", "/files/");
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) item.loaded = e.loaded / e.total;
      this.show(item);
    });
    xhr.addEventListener("load", () => this.uploaded(item, xhr));
    xhr.addEventListener("error", () => this.refused(item, "The upload failed (connection lost). Remove the file and attach it again."));
    xhr.send(form);
  }

  uploaded(item, xhr) {
    item.xhr = null;
    let body = null;
    try {
      body = JSON.parse(xhr.responseText);
    } catch {
      // a proxy's or Django's HTML error page
    }
    if (xhr.status === 201 && body && body.attachment) {
      item.block = body.attachment;
      this.show(item);
      this.changed();
      return;
    }
    const fallback = xhr.status === 403 ? "Your session has expired: reload the page and attach the file again."
      : xhr.status === 413 ? "This file is too large for the server."
        : `The upload failed (HTTP ${xhr.status}).`;
    this.refused(item, (body && body.error) || fallback);
  }

  refused(item, message) {
    item.xhr = null;
    item.error = message;
    this.show(item);
    this.changed();
  }

  remove(item) {
    if (item.xhr) item.xhr.abort();
    if (item.preview && item.preview.startsWith("blob:")) URL.revokeObjectURL(item.preview);
    item.chip.remove();
    this.items = this.items.filter((i) => i !== item);
    this.changed();
  }

  clear() {
    for (const item of [...this.items]) this.remove(item);
  }

  chip(item) {
    const kind = kindOf(item.file.type);
    const thumb = item.preview
      ? h("img", { class: "chip-thumb", src: item.preview, alt: "" })
      : h("span", { class: "chip-icon", "aria-hidden": "true" }, ICONS[kind]);
    item.status = h("span", { class: "chip-status" });
    item.bar = h("progress", { class: "chip-progress", max: 1, value: 0, "aria-label": `Uploading ${item.file.name}` });
    return h("li", { class: "file-chip", "data-kind": kind }, thumb,
      h("span", { class: "chip-text" }, h("span", { class: "chip-name" }, item.file.name),
        h("span", { class: "chip-size muted" }, formatSize(item.file.size)), item.status),
      item.bar,
      h("button", { type: "button", class: "chip-remove", "aria-label": `Remove ${item.file.name}`, title: "Remove",
        onclick: () => this.remove(item) }, "×"));
  }

  show(item) {
    const uploading = !item.block && !item.error;
    item.chip.classList.toggle("uploading", uploading);
    item.chip.classList.toggle("refused", Boolean(item.error));
    item.bar.hidden = !uploading;
    item.bar.value = item.loaded || 0;
    item.status.textContent = item.error || (uploading ? `Uploading… ${Math.round((item.loaded || 0) * 100)}%` : "");
    item.status.setAttribute("role", item.error ? "alert" : "status");
    if (item.block) item.chip.dataset.kind = item.block.type;
  }

  changed() {
    this.list.hidden = !this.items.length;
    this.onChange();
  }

  /** Whether files may be attached at all (not for the offline model). */
  setEnabled(enabled) {
    this.enabled = enabled;
  }

  get uploading() { return this.items.some((i) => !i.block && !i.error); }
  get refusedCount() { return this.items.filter((i) => i.error).length; }
  get count() { return this.items.length; }
  /** The uploaded files' blocks, in the order they were added. */
  get blocks() { return this.items.filter((i) => i.block).map((i) => i.block); }
}

function csrfToken() {
  const input = document.querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}

/** A stored file in a message: thumbnail (opens full size), player, or document chip. */
export function renderAttachment(block) {
  const a = block.attachment;
  const url = fileUrl(a);
  if (!url) return null;
  const name = typeof a.name === "string" && a.name ? a.name : "file";
  const kind = block.type;
  if (kind === "image" && PREVIEWABLE.has(block.mime_type)) {
    return h("figure", { class: "media attachment" }, h("a", { href: url, target: "_blank", rel: "noopener", title: name },
      h("img", { src: url, alt: name, loading: "lazy" })));
  }
  if (kind === "audio" || kind === "video") {
    return h("figure", { class: `media attachment attachment-${kind}` },
      h(kind, { src: url, controls: true, preload: "metadata", "aria-label": name }),
      h("figcaption", { class: "muted" }, `${name} · ${formatSize(a.size)}`));
  }
  return h("div", { class: "doc-chip attachment", "data-kind": kind },
    h("span", { class: "chip-icon", "aria-hidden": "true" }, ICONS[kind] || ICONS.document),
    h("span", { class: "chip-text" },
      h("a", { class: "chip-name", href: url, target: "_blank", rel: "noopener" }, name),
      h("span", { class: "chip-size muted" }, formatSize(a.size))),
    h("a", { class: "btn btn-small", href: `${url}?download=1`, download: name }, "Download"));
}
