// One renderer per Interactions API step type (and per content block type).
// Unknown types render as a neutral box naming the type; nothing throws on new types.

import { PREVIEWABLE, fileUrl, renderAttachment } from "./attachments.js";
import { copyText, h } from "./dom.js";
import { openLightbox } from "./lightbox.js";
import { searchSuggestions } from "./widget.js";
import { hostOf, isInlineImage, renderMarkdown, renderMarkdownLive } from "./markdown.js";

/** Render step `step`; `live` is true while this step is the one being generated.
 * `opts.json`: the reply is structured output (JSON): its text shows as JSON. */
export function renderStep(step, live, opts = {}) {
  if (!step || typeof step !== "object") return null;
  const render = STEP_RENDERERS[step.type];
  if (render === null) return null;  // deliberately not shown
  if (render) return render(step, live, opts);
  return unsupported(`Unsupported step: ${step.type || "untyped"}`);
}

const STEP_RENDERERS = {
  model_output: renderModelOutput,
  thought: renderThought,
  user_input: null,  // the turn's own input is shown as the user message
  function_call: (s) => toolBox("Function call", s.name, jsonBlock(s.arguments)),
  function_result: (s) => toolBox("Function result", s.name, resultBlock(s.result), s.is_error),
  code_execution_call: (s) => toolBox("Code", s.arguments && s.arguments.language,
    codeBlock((s.arguments && s.arguments.code) || "", (s.arguments && s.arguments.language) || "python")),
  code_execution_result: (s) => toolBox("Code output", null, resultBlock(s.result), s.is_error),
  google_search_call: (s) => queryBox("Searched the web", s.arguments),
  google_search_result: renderSearchResult,
  google_maps_call: (s) => queryBox("Searched Google Maps", s.arguments),
  google_maps_result: renderPlaces,
  url_context_call: (s) => toolBox("Reading", null,
    linkList(((s.arguments && s.arguments.urls) || []).map((url) => ({ url, title: url })))),
  url_context_result: (s) => toolBox("Read", null, linkList(asList(s.result).map((r) => ({
    url: r.url, title: `${r.url} ${r.status && r.status !== "success" ? `(${r.status})` : ""}`,
  })))),
  file_search_call: () => toolBox("Searching files", null),
  file_search_result: (s) => toolBox("File search results", null, s.result ? jsonBlock(s.result) : null),
  mcp_server_tool_call: (s) => toolBox("Tool call", `${s.server_name || "?"} · ${s.name || "?"}`, jsonBlock(s.arguments)),
  mcp_server_tool_result: (s) => toolBox("Tool result", `${s.server_name || ""} ${s.name || ""}`.trim(), resultBlock(s.result)),
  retrieval_call: (s) => queryBox("Retrieval", s.arguments),
  retrieval_result: () => toolBox("Retrieval results", null),
  processing_call: () => toolBox("Processing media", null),
  processing_result: () => null,
};

function renderModelOutput(step, live, opts = {}) {
  const content = Array.isArray(step.content) ? step.content : [];
  // While streaming, the same element is updated in place frame after frame.
  const box = live ? persistent(liveSteps, step, () => h("div", { class: "step step-output live" }))
    : h("div", { class: "step step-output" });
  const show = opts.json ? (block) => jsonContent(block, live)
    : (block) => (live ? liveContent(block) : renderContent(block));
  const children = content.map((block) => show(block) || h("span"));
  if (step.error && step.error.message) {
    children.push(h("div", { class: "inline-error" }, step.error.message));
  }
  children.forEach((child, i) => {
    if (box.children[i] !== child) box.insertBefore(child, box.children[i] || null);
  });
  while (box.children.length > children.length) box.lastElementChild.remove();
  return box;
}

const liveSteps = new WeakMap();   // streaming step -> its element
const liveBlocks = new WeakMap();  // finished block of a streaming step -> its element

const liveCited = new WeakMap();  // streaming text block with citations -> {key, el}

function liveContent(block) {
  if (block && block.type === "text") {
    if (!(block.annotations && block.annotations.length)) return renderMarkdownLive(block);
    // Text keeps arriving after the first citations (appended to this same block), so the
    // element is made again whenever the text or its citations changed.
    const key = `${(block.text || "").length}/${block.annotations.length}`;
    const seen = liveCited.get(block);
    if (seen && seen.key === key) return seen.el;
    const el = renderContent(block);
    liveCited.set(block, { key, el });
    return el;
  }
  return persistent(liveBlocks, block, () => renderContent(block));
}

function persistent(cache, key, make) {
  if (!key || typeof key !== "object") return make();
  let el = cache.get(key);
  if (!el) {
    el = make();
    if (el) cache.set(key, el);
  }
  return el;
}

function renderThought(step, live) {
  const summary = (Array.isArray(step.summary) ? step.summary : [])
    .filter((b) => b && !(b.type === "text" && !b.text));
  if (!summary.length) {
    // Only a signature (which is never shown, only replayed): there is nothing to open.
    return live ? h("div", { class: "step thought-pending live" }, "Thinking…") : null;
  }
  const body = h("div", { class: "thought-body" });
  for (const block of summary) body.append(renderContent(block) || "");
  const heading = live ? latestHeading(summary) : "";
  return h("details", { class: `step thought${live ? " live" : ""}` },
    h("summary", {}, live ? `Thinking…${heading ? ` ${heading}` : ""}` : "Thoughts"), body);
}

/** The last "**Heading**" of a streaming summary: what the model is thinking about now. */
function latestHeading(summary) {
  const text = summary.filter((b) => b.type === "text").map((b) => b.text).join("\n");
  const headings = [...text.matchAll(/\*\*([^*\n]{1,80})\*\*/g)];
  return headings.length ? headings[headings.length - 1][1].trim() : "";
}

/** A text block of structured output: JSON, pretty-printed once whole, with a copy button. */
function jsonContent(block, live) {
  if (!block || block.type !== "text") return live ? liveContent(block) : renderContent(block);
  const text = block.text || "";
  if (live) {
    const pre = persistent(liveBlocks, block, () => h("pre", { class: "json-reply live" }, h("code")));
    if (pre.firstChild.textContent !== text) pre.firstChild.textContent = text;
    return pre;
  }
  let pretty = text;
  try {
    pretty = JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    // not JSON: shown as it came; the turn's check says what is wrong with it
  }
  const copy = h("button", { type: "button", class: "icon-btn copy-json", "aria-label": "Copy JSON",
    onclick: (e) => copyText(pretty, e.currentTarget) }, "Copy");
  return h("div", { class: "json-reply" }, h("div", { class: "json-head" },
    h("span", { class: "json-label" }, "JSON"), copy), h("pre", {}, h("code", {}, pretty)));
}

/** Render one content block (text, image, audio, video, document, unknown). */
export function renderContent(block) {
  if (!block || typeof block !== "object") return null;
  const render = CONTENT_RENDERERS[block.type];
  return render ? render(block) : unsupported(`Unsupported content: ${block.type || "untyped"}`);
}

const CONTENT_RENDERERS = {
  text: renderText,
  image: (b) => media(b, "image"),
  audio: (b) => media(b, "audio"),
  video: (b) => media(b, "video"),
  document: (b) => media(b, "document"),
};

function renderText(block) {
  const { fragment, sources } = renderMarkdown(block.text || "", block.annotations);
  const box = h("div", { class: "md" }, fragment);
  if (!sources.length) return box;
  const list = h("ol", { class: "sources" }, sources.map((s) => h("li", {},
    h("a", { href: s.url, target: "_blank", rel: "noopener noreferrer nofollow" }, s.title),
    h("span", { class: "muted" }, ` ${hostOf(s.url)}`))));
  return h("div", {}, box, h("details", { class: "sources-box", open: true },
    h("summary", {}, `Sources (${sources.length})`), list));
}

const MEDIA_TAGS = { image: "img", audio: "audio", video: "video" };
const MEDIA_LABELS = { image: "Image", audio: "Audio", video: "Video", document: "Document" };

function media(block, kind) {
  const mime = typeof block.mime_type === "string" ? block.mime_type : "";
  const label = `${MEDIA_LABELS[kind]}${mime ? ` (${mime})` : ""}`;
  // A file on this site: shown, played or opened full size; a document, or an image the
  // browser cannot show (HEIC), as a chip with its name, size and a download.
  const file = storedFile(block);
  const shown = MEDIA_TAGS[kind] && (kind !== "image" || PREVIEWABLE.has(mime));
  if (file && shown) return fileMedia(file, kind, label);
  const chip = block.attachment ? renderAttachment(block) : null;
  if (chip) return chip;
  const src = mediaSource(block, kind, mime);
  if (src && MEDIA_TAGS[kind] === "img") {
    return h("figure", { class: "media" }, h("img", { src, alt: block.name || "Generated image", loading: "lazy" }));
  }
  if (src && MEDIA_TAGS[kind]) return h("figure", { class: "media" }, h(MEDIA_TAGS[kind], { src, controls: true }));
  const link = resolve(block.uri);
  if (link && /^https?:$/.test(link.protocol)) {
    return h("p", { class: "media-link" },
      h("a", { href: link.href, target: "_blank", rel: "noopener noreferrer nofollow" }, `Open ${label.toLowerCase()}`));
  }
  return h("p", { class: "media-link muted" }, label);
}

/** The file a block refers to (a generated image, an upload), when it is one of ours. */
function storedFile(block) {
  const ref = block.attachment;
  const src = fileUrl(ref);
  if (!src) return null;
  return { src, download: `${src}?download=1`, name: typeof ref.name === "string" ? ref.name : "",
    size: Number.isFinite(ref.size) ? ref.size : null };
}

/** A stored file: shown (an image opens full size on click), with a download link. */
function fileMedia(file, kind, label) {
  const caption = h("figcaption", {},
    h("span", { class: "muted" }, [file.name || label, file.size === null ? "" : ` · ${formatBytes(file.size)}`].join("")),
    h("a", { class: "media-download", href: file.download, download: file.name || "" }, "Download"));
  if (kind === "image") {
    // A plain link to the file (a new tab with a modifier key or a middle click), and a
    // lightbox on a plain click.
    const open = h("a", { class: "media-open", href: file.src, target: "_blank", rel: "noopener noreferrer",
      title: "Open full size", onclick: (e) => {
        if (e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
        e.preventDefault();
        openLightbox(file.src, file.name, file.download);
      } }, h("img", { src: file.src, alt: file.name || "Generated image", loading: "lazy",
        decoding: "async" }));
    return h("figure", { class: "media attachment" }, open, caption);
  }
  const player = h(MEDIA_TAGS[kind], { src: file.src, controls: true, preload: "metadata" });
  return h("figure", { class: `media attachment attachment-${kind}` }, player, caption);
}

function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10 * 1024 ? 1 : 0)} KB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MB`;
}

/** A source the browser may load without asking: inline data, or a file on this site. */
function mediaSource(block, kind, mime) {
  if (typeof block.data === "string" && mime.startsWith(`${kind}/`) && /^[\w.+-]+\/[\w.+-]+$/.test(mime)) {
    const src = `data:${mime};base64,${block.data}`;
    if (kind !== "image" || isInlineImage(src)) return src;
  }
  // Only our own absolute paths (files this site serves), checked where the browser lands.
  const url = typeof block.uri === "string" && block.uri.startsWith("/") ? resolve(block.uri) : null;
  return url && url.origin === location.origin ? url.href : null;
}

/** `uri` as the browser would resolve it on this page ("/\\evil.example/x" is off-site). */
function resolve(uri) {
  if (typeof uri !== "string") return null;
  try {
    return new URL(uri, location.href);
  } catch {
    return null;
  }
}

function renderSearchResult(step) {
  const widgets = asList(step.result).map((r) => r && r.search_suggestions).filter(Boolean);
  // Google asks for its suggestion chips to be shown: a sandboxed frame (widget.js).
  return widgets.length ? searchSuggestions(widgets) : null;
}

function renderPlaces(step) {
  const places = asList(step.result).flatMap((r) => asList(r && r.places));
  if (!places.length) return null;
  return toolBox("Places", null, linkList(places.map((p) => ({ url: p.url, title: p.name || p.url }))));
}

function queryBox(label, args) {
  const queries = (args && Array.isArray(args.queries)) ? args.queries : [];
  return toolBox(label, null, queries.length ? h("ul", { class: "queries" }, queries.map((q) => h("li", {}, q))) : null);
}

function toolBox(label, name, body, isError) {
  const head = h("div", { class: "tool-head" }, h("span", { class: "tool-label" }, label),
    name ? h("code", {}, name) : null, isError ? h("span", { class: "badge-error" }, "error") : null);
  return h("div", { class: "step tool" }, head, body || null);
}

function unsupported(text) {
  return h("div", { class: "step unsupported" }, text);
}

function jsonBlock(value) {
  if (value === undefined || value === null) return null;
  const text = typeof value === "string" ? value : JSON.stringify(value, null, 2);
  return h("pre", { class: "json" }, h("code", {}, truncate(text)));
}

function resultBlock(result) {
  if (typeof result === "string") return h("pre", { class: "json" }, h("code", {}, truncate(result)));
  if (Array.isArray(result) && result.every((b) => b && typeof b.type === "string")) {
    return h("div", { class: "result" }, result.map(renderContent));
  }
  return jsonBlock(result);
}

function codeBlock(code, lang) {
  // The fence must be longer than any run of backticks inside the code.
  const longest = Math.max(0, ...(code.match(/`+/g) || []).map((run) => run.length));
  const fence = "`".repeat(Math.max(3, longest + 1));
  const tag = /^[\w+#.-]+$/.test(lang) ? lang : "";
  return renderMarkdown(`${fence}${tag}\n${code}\n${fence}`).fragment;
}

function linkList(items) {
  const safe = items.filter((i) => i && typeof i.url === "string" && /^https?:\/\//i.test(i.url));
  if (!safe.length) return null;
  return h("ul", { class: "links" }, safe.map((i) => h("li", {},
    h("a", { href: i.url, target: "_blank", rel: "noopener noreferrer nofollow" }, i.title || i.url))));
}

function asList(value) {
  return Array.isArray(value) ? value : [];
}

function truncate(text, limit = 4000) {
  return text.length > limit ? `${text.slice(0, limit)}\n… (${text.length - limit} more characters)` : text;
}
