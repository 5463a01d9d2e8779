// Google's search suggestions: a reply grounded in Google Search must show them, and they
// come as HTML and CSS. They are shown in a frame sandboxed without scripts and without our
// origin (no allow-scripts, no allow-same-origin), under a CSP that loads nothing remote.
//
// Sizing it to its content is the hard part: such a frame tells its parent nothing about
// its document (that is the point of the opaque origin), and has no script to say it
// itself (postMessage). allow-same-origin would let us measure it, but would make the
// widget's document ours: its links, its <meta refresh>, any flag added later would act as
// this site. Responsive iframes (CSS frame-sizing, the frame opting in by a <meta>) would
// be the clean way, but the Chromium we run parses the property and does nothing with it.
//
// So the height is taken from a copy that is never shown: the same HTML, sanitized
// (DOMPurify: no scripts, no handlers, nothing that fetches), in a closed shadow root (its
// CSS cannot reach our page, ours does not reach it), laid out at the frame's width with
// the defaults a frame's document has (html and body elements, body margin, the initial
// font), inside a box of height zero with paint containment: nothing of it paints or takes
// input whatever its CSS says (position: fixed is contained; :host cannot style the box
// around it). The page's CSP stays behind it all. A ResizeObserver keeps the frame as tall
// as the copy, also when the width changes. Should the copy be off, the frame scrolls:
// nothing is ever clipped out of reach.

import { h } from "./dom.js";

const { DOMPurify } = window;

const FRAME_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";
const COPY_PURIFY = {
  USE_PROFILES: { html: true, svg: true },  // the widget carries an inline SVG logo
  FORCE_BODY: true,  // keeps a leading <style>
  ADD_TAGS: ["style"],
  FORBID_TAGS: ["form", "input", "button", "textarea", "select", "link", "meta", "base",
    "iframe", "frame", "object", "embed", "video", "audio", "source", "track", "picture"],
  FORBID_ATTR: ["background", "poster", "srcset", "ping"],
  RETURN_DOM_FRAGMENT: true,
};
// A frame's document has the initial inherited values (not our page's font) and UA styles
// for html and body; the copy gets the same. html is a flow root so that body's margins
// count in its height, as they do in the frame's scroll height.
const COPY_CSS = ":host { all: initial; display: block; } html { display: flow-root; } "
  + "body { display: block; margin: 8px; }";
const REMOTE_URL = /url\(\s*(?!['"]?\s*data:)/gi;

/** The frame showing `widgets` (HTML strings), kept as tall as its content. */
export function searchSuggestions(widgets) {
  // The frame gets the sanitized HTML too: its CSP forbids remote fetches, but a test saw
  // one request for a hostile widget's <img src> slip out (a speculative fetch, before the
  // CSP took effect?). Sanitized, there is nothing to fetch.
  const html = DOMPurify.sanitize(widgets.join(""), { ...COPY_PURIFY, RETURN_DOM_FRAGMENT: false });
  const doc = `<!doctype html><meta http-equiv="Content-Security-Policy" content="${FRAME_CSP}">`
    + `<base target="_blank">${html}`;
  const frame = h("iframe", { sandbox: "allow-popups allow-popups-to-escape-sandbox", srcdoc: doc,
    title: "Search suggestions", loading: "lazy" });
  const { host, root } = copyOf(html);
  const fit = () => {
    if (!frame.isConnected || !frame.clientWidth) return;
    host.style.width = `${frame.clientWidth}px`;
    const height = Math.ceil(root.getBoundingClientRect().height);
    if (height > 0 && frame.style.height !== `${height}px`) frame.style.height = `${height}px`;
  };
  const observer = new ResizeObserver(fit);
  observer.observe(frame);
  observer.observe(root);
  return h("div", { class: "step search-suggestions" }, frame,
    h("div", { class: "widget-copy", inert: true, "aria-hidden": "true" }, host));
}

/** The sanitized copy in a closed shadow root; `root` is its <html>. */
function copyOf(html) {
  const host = h("div");
  const shadow = host.attachShadow({ mode: "closed" });
  const root = document.createElement("html");
  const body = document.createElement("body");
  body.append(DOMPurify.sanitize(html, COPY_PURIFY));
  quiet(body);
  root.append(body);
  shadow.append(h("style", {}, COPY_CSS), root);
  return { host, root };
}

/** The copy fetches nothing: the frame loads nothing remote, so layout does not miss it. */
function quiet(root) {
  for (const style of root.querySelectorAll("style")) {
    style.textContent = style.textContent.replace(/@import/gi, "@x-import")
      .replace(REMOTE_URL, "url(about:invalid#");
  }
  for (const el of root.querySelectorAll("[style]")) {
    el.setAttribute("style", el.getAttribute("style").replace(REMOTE_URL, "url(about:invalid#"));
  }
  for (const el of root.querySelectorAll("image, use, feImage")) {
    for (const name of ["href", "xlink:href"]) {
      if (!(el.getAttribute(name) || "#").startsWith("#")) el.removeAttribute(name);
    }
  }
}
