// A generated image at full size, over the page: one <dialog>, made on first use.
// Escape, a click outside the image or "Close" closes it; the links open or save the file.

import { h } from "./dom.js";

let dialog = null;

/** Show `src` (a file of this site) full size; `download` is its download URL. */
export function openLightbox(src, name, download) {
  if (!dialog) {
    dialog = h("dialog", { class: "lightbox", "aria-label": "Image, full size" });
    dialog.addEventListener("click", (e) => { if (e.target === dialog) dialog.close(); });
    dialog.addEventListener("close", () => dialog.replaceChildren());  // frees the image
    document.body.append(dialog);
  }
  dialog.replaceChildren(
    h("img", { src, alt: name || "Generated image" }),
    h("div", { class: "lightbox-bar" },
      h("span", { class: "lightbox-name" }, name || ""),
      h("a", { href: src, target: "_blank", rel: "noopener noreferrer" }, "Open in new tab"),
      h("a", { href: download, download: name || "" }, "Download"),
      h("button", { type: "button", class: "btn btn-small", onclick: () => dialog.close() }, "Close")));
  dialog.showModal();
}
