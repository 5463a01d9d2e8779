// Model output is untrusted: markdown -> HTML (raw HTML disabled) -> DOMPurify, then
// remote images become links, links open in a new tab without referrer, and code
// blocks get a language label and a Copy button.

const { markdownit, DOMPurify, hljs } = window;

const md = markdownit({ html: false, linkify: true, typographer: false, highlight });
md.renderer.rules.image = renderImage;

// Private-use characters mark citations in the text; markdown leaves them alone, and they
// become elements afterwards: MARK.link + n + MARK.end is a "[n]" link to source n, and
// MARK.start / MARK.stop + k + MARK.end open and close the span annotation k cites.
const MARK = { link: "\uE000", end: "\uE001", start: "\uE002", stop: "\uE003" };
const MARK_RE = /([\uE000\uE002\uE003])(\d+)\uE001/g;
const HAS_MARK = /[\uE000\uE002\uE003]/;
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
  const cited = sources.length ? citations(text, annotations, sources) : [];
  const fragment = toFragment(cited.length ? insertCitationMarks(text, cited) : text);
  if (cited.length) linkCitations(fragment, cited, sources);
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

/**
 * The url citations of a text, each as {n: its source's number, from, to: the cited span
 * as string indexes}. Annotation offsets are UTF-8 bytes (half-open); one inside a
 * character moves to that character's end.
 */
function citations(text, annotations, sources) {
  const numbers = new Map(sources.map((s, i) => [s.url, i + 1]));
  const cited = (annotations || []).filter((a) => a && numbers.has(a.url) && Number.isInteger(a.end_index));
  const at = stringIndexes(text, cited.flatMap((a) => [a.end_index, Number.isInteger(a.start_index) ? a.start_index : 0]));
  return cited.map((a) => {
    const to = at.get(a.end_index);
    const from = Math.min(to, blockStart(text, at.get(Number.isInteger(a.start_index) ? a.start_index : 0)));
    return { n: numbers.get(a.url), from, to };
  });
}

/** String index of each UTF-8 byte offset in `offsets` (clamped to the text). */
function stringIndexes(text, offsets) {
  const wanted = [...new Set(offsets)].sort((x, y) => x - y);
  const out = new Map();
  let bytes = 0;
  let i = 0;
  for (const offset of wanted) {
    while (bytes < offset && i < text.length) {
      const cp = text.codePointAt(i);
      bytes += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
      i += cp > 0xffff ? 2 : 1;
    }
    out.set(offset, i);
  }
  return out;
}

/** A span starting a line starts after its list bullet, heading or quote marker: a mark
 * before those would turn the line into a paragraph. */
function blockStart(text, i) {
  if (i > 0 && text[i - 1] !== "\n") return i;
  const prefix = /^(?:[ \t]*(?:[-*+]|\d{1,9}[.)]|#{1,6}|>)[ \t]+)+/.exec(text.slice(i));
  return prefix ? i + prefix[0].length : i;
}

/** The text with marks: at each offset, spans that end, then "[n]" links, then spans that
 * start (so a span ending where another starts does not include its link). */
function insertCitationMarks(text, cited) {
  const at = new Map();  // string index -> {stop: [k], link: Set of n, start: [k]}
  const place = (i) => at.get(i) || at.set(i, { stop: [], link: new Set(), start: [] }).get(i);
  cited.forEach((c, k) => {
    place(c.to).stop.push(k);
    place(c.to).link.add(c.n);
    place(c.from).start.push(k);
  });
  let out = "";
  let from = 0;
  for (const i of [...at.keys()].sort((x, y) => x - y)) {
    const marks = at.get(i);
    out += text.slice(from, i);
    for (const k of marks.stop) out += `${MARK.stop}${k}${MARK.end}`;
    for (const n of marks.link) out += `${MARK.link}${n}${MARK.end}`;
    for (const k of marks.start) out += `${MARK.start}${k}${MARK.end}`;
    from = i;
  }
  return out + text.slice(from);
}

/**
 * Turn the marks into elements: each piece of text inside one or more cited spans becomes a
 * <span class="cited" data-sources="1 3"> (spans overlap and cross markup, so one span per
 * text node), and each link mark a "[n]" link.
 */
function linkCitations(root, cited, sources) {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const nodes = [];
  while (walker.nextNode()) nodes.push(walker.currentNode);
  const open = new Set();  // annotation numbers whose span we are in
  for (const node of nodes) {
    if (!HAS_MARK.test(node.data) && !open.size) continue;
    const parts = document.createDocumentFragment();
    let last = 0;
    for (const m of node.data.matchAll(MARK_RE)) {
      parts.append(citedText(node.data.slice(last, m.index), open, cited, sources));
      const number = Number(m[2]);
      if (m[1] === MARK.start) open.add(number);
      else if (m[1] === MARK.stop) open.delete(number);
      else if (sources[number - 1]) parts.append(citationLink(number, sources[number - 1]));
      last = m.index + m[0].length;
    }
    parts.append(citedText(node.data.slice(last), open, cited, sources));
    node.replaceWith(parts);
  }
}

function citedText(text, open, cited, sources) {
  // Whitespace between blocks (a "\n" between two list items) is not part of the sentence.
  if (!open.size || !text || /^\s*\n\s*$/.test(text)) return text;
  const numbers = [...new Set([...open].map((k) => cited[k].n))].sort((x, y) => x - y);
  const span = document.createElement("span");
  span.className = "cited";
  span.dataset.sources = numbers.join(" ");
  span.title = numbers.map((n) => sources[n - 1].title).join(" · ");
  span.textContent = text;
  return span;
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
