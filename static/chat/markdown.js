// Model output is untrusted: markdown -> HTML (raw HTML disabled) -> DOMPurify, then
// remote images become links, links open in a new tab without referrer, and code
// blocks get a language label and a Copy button.

const { markdownit, DOMPurify, hljs } = window;

const md = markdownit({ html: false, linkify: true, typographer: false, highlight });
md.renderer.rules.image = renderImage;

const CITE_OPEN = "\uE000";   // private-use characters mark citation positions in the text:
const CITE_CLOSE = "\uE001";  // markdown leaves them alone, we turn them into links afterwards
const CITE_RE = /\uE000(\d+)\uE001/g;
const HIGHLIGHT_LIMIT = 100_000;  // beyond this, highlighting costs more than it helps

const PURIFY = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "option"],
  FORBID_ATTR: ["style"],
  ADD_ATTR: ["target"],
  RETURN_DOM_FRAGMENT: true,
};

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A" && node.hasAttribute("href")) {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
  if (node.tagName === "IMG") {
    const src = node.getAttribute("src") || "";
    if (!isInlineImage(src)) {
      // Never let model output make the browser fetch a remote URL on its own.
      node.removeAttribute("src");
      node.removeAttribute("srcset");
      if (/^https?:\/\//i.test(src)) node.setAttribute("data-remote-src", src);
    }
  }
});

/** Render markdown text (with optional url citations) into a sanitized fragment. */
export function renderMarkdown(text, annotations) {
  const sources = citationSources(annotations);
  const source = sources.length ? insertCitationMarks(text, annotations, sources) : text;
  const fragment = toFragment(source);
  if (sources.length) linkCitations(fragment, sources);
  return { fragment, sources };
}

// Text blocks being streamed -> their element and the source it already shows.
const streaming = new WeakMap();

/**
 * Render a text block that is still growing, updating one element in place.
 * Sanitizing and layout cost time in proportion to what changes, so only the last two
 * top-level blocks are rendered again; the blocks before them are final and their
 * nodes stay where they are. The finished reply is rendered whole once more
 * (renderMarkdown), so the end result never depends on this shortcut.
 */
export function renderMarkdownLive(block) {
  const text = block.text || "";
  let entry = streaming.get(block);
  if (!entry || !text.startsWith(entry.stable)) {
    entry = { stable: "", el: document.createElement("div"), tail: [] };
    entry.el.className = "md";
    streaming.set(block, entry);
  }
  for (const node of entry.tail) node.remove();
  const rest = text.slice(entry.stable.length);
  const cut = unstableStart(rest);
  if (cut > 0) {
    entry.el.append(toFragment(rest.slice(0, cut)));
    entry.stable += rest.slice(0, cut);
  }
  const tail = toFragment(rest.slice(cut));
  entry.tail = [...tail.childNodes];
  entry.el.append(tail);
  return entry.el;
}

function toFragment(source) {
  const fragment = DOMPurify.sanitize(md.render(source), PURIFY);
  replaceRemoteImages(fragment);
  decorateCodeBlocks(fragment);
  return fragment;
}

/**
 * Character offset of the start of the second-to-last top-level markdown block of
 * `text`: the last block is still being written, and its growth can still merge it
 * into the one before (a paragraph "3" becoming item "3." of the list above it).
 */
function unstableStart(text) {
  const starts = [];
  for (const token of md.parse(text, {})) {
    if (token.level === 0 && token.map && token.nesting !== -1) starts.push(token.map[0]);
  }
  const line = starts.length > 2 ? starts[starts.length - 2] : 0;
  let offset = 0;
  for (let i = 0; i < line; i++) offset = text.indexOf("\n", offset) + 1;
  return offset;
}

/** Plain text with line breaks kept (user messages are shown as typed). */
export function plainText(text) {
  const div = document.createElement("div");
  div.className = "plain";
  div.textContent = text;
  return div;
}

/** A data: image is inert: showing it makes no request. */
export function isInlineImage(src) {
  return /^data:image\/(png|jpe?g|gif|webp|bmp|heic|heif|tiff);base64,[A-Za-z0-9+/=\s]*$/i.test(src);
}

function highlight(code, lang) {
  if (!lang || code.length > HIGHLIGHT_LIMIT || !hljs.getLanguage(lang)) return "";
  try {
    return hljs.highlight(code, { language: lang, ignoreIllegals: true }).value;
  } catch {
    return "";
  }
}

function renderImage(tokens, idx) {
  const token = tokens[idx];
  const src = token.attrGet("src") || "";
  const alt = md.utils.escapeHtml(token.content || "image");
  if (isInlineImage(src)) return `<img src="${md.utils.escapeHtml(src)}" alt="${alt}">`;
  return `<a class="remote-image" href="${md.utils.escapeHtml(src)}">Image: ${alt}</a>`;
}

function replaceRemoteImages(root) {
  for (const img of root.querySelectorAll("img[data-remote-src]")) {
    const link = document.createElement("a");
    link.className = "remote-image";
    link.href = img.getAttribute("data-remote-src");
    link.target = "_blank";
    link.rel = "noopener noreferrer nofollow";
    link.textContent = `Image: ${img.getAttribute("alt") || "image"}`;
    img.replaceWith(link);
  }
  for (const img of root.querySelectorAll("img:not([src])")) img.remove();
}

function decorateCodeBlocks(root) {
  for (const pre of root.querySelectorAll("pre")) {
    const code = pre.querySelector("code");
    const lang = code && /language-([\w+#.-]+)/.exec(code.className);
    if (code) code.classList.add("hljs");
    const box = document.createElement("div");
    box.className = "code-block";
    const head = document.createElement("div");
    head.className = "code-head";
    const label = document.createElement("span");
    label.textContent = lang ? lang[1] : "text";
    const copy = document.createElement("button");
    copy.type = "button";
    copy.className = "copy-code";
    copy.textContent = "Copy";
    copy.setAttribute("aria-label", "Copy code");
    head.append(label, copy);
    pre.replaceWith(box);
    box.append(head, pre);
  }
  for (const table of root.querySelectorAll("table")) {
    const wrap = document.createElement("div");
    wrap.className = "table-wrap";
    table.replaceWith(wrap);
    wrap.append(table);
  }
}

/** Unique cited URLs in order of first appearance. */
function citationSources(annotations) {
  const sources = [];
  const seen = new Map();
  for (const a of annotations || []) {
    if (a && a.type === "url_citation" && /^https?:\/\//i.test(a.url || "") && !seen.has(a.url)) {
      seen.set(a.url, sources.length + 1);
      sources.push({ url: a.url, title: a.title || hostOf(a.url) });
    }
  }
  return sources;
}

/** Insert markers at each citation's end; indexes are UTF-8 byte offsets (half-open). */
function insertCitationMarks(text, annotations, sources) {
  const bytes = new TextEncoder().encode(text);
  const numbers = new Map(sources.map((s, i) => [s.url, i + 1]));
  const marks = new Map();  // byte offset -> set of source numbers
  for (const a of annotations) {
    const n = numbers.get(a && a.url);
    if (!n || !Number.isInteger(a.end_index)) continue;
    const at = charBoundary(bytes, Math.min(Math.max(a.end_index, 0), bytes.length));
    if (!marks.has(at)) marks.set(at, new Set());
    marks.get(at).add(n);
  }
  const decoder = new TextDecoder();
  let out = "";
  let from = 0;
  for (const at of [...marks.keys()].sort((x, y) => x - y)) {
    out += decoder.decode(bytes.subarray(from, at));
    for (const n of marks.get(at)) out += `${CITE_OPEN}${n}${CITE_CLOSE}`;
    from = at;
  }
  return out + decoder.decode(bytes.subarray(from));
}

function charBoundary(bytes, at) {
  while (at < bytes.length && (bytes[at] & 0xc0) === 0x80) at += 1;
  return at;
}

function linkCitations(root, sources) {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const nodes = [];
  while (walker.nextNode()) {
    if (walker.currentNode.data.includes(CITE_OPEN)) nodes.push(walker.currentNode);
  }
  for (const node of nodes) {
    const parts = document.createDocumentFragment();
    let last = 0;
    for (const m of node.data.matchAll(CITE_RE)) {
      parts.append(node.data.slice(last, m.index));
      parts.append(citationLink(Number(m[1]), sources[Number(m[1]) - 1]));
      last = m.index + m[0].length;
    }
    parts.append(node.data.slice(last));
    node.replaceWith(parts);
  }
}

function citationLink(n, source) {
  const sup = document.createElement("sup");
  sup.className = "cite";
  const a = document.createElement("a");
  a.href = source.url;
  a.target = "_blank";
  a.rel = "noopener noreferrer nofollow";
  a.title = source.title;
  a.textContent = `[${n}]`;
  sup.append(a);
  return sup;
}

export function hostOf(url) {
  try {
    return new URL(url).hostname;
  } catch {
    return url;
  }
}
