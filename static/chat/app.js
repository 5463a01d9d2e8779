// Entry point of the chat page: wires the websocket, the thread store, the turn views
// and the composer together. Rendering happens at most once per animation frame.

import { ComposerFiles } from "./attachments.js";
import { copyText, fadeServerToasts, toast } from "./dom.js";
import { pendingView, TurnView } from "./render.js";
import { initSettings, loadSettingsDialog, settingsSettled, showActiveSettings } from "./settings.js";
import { initSidebar, refreshSidebar, setSidebarTitle } from "./sidebar.js";
import { ChatSocket, newClientId } from "./socket.js";
import { RUNNING, ThreadStore } from "./thread.js";

const config = JSON.parse(document.getElementById("chat-config").textContent);
const $ = (id) => document.getElementById(id);
const ui = {
  scroller: $("messages"),
  list: $("turns"),
  empty: $("empty-state"),
  form: $("composer"),
  input: $("composer-input"),
  send: $("send-button"),
  stop: $("stop-button"),
  hint: $("composer-hint"),
  title: $("chat-title"),
  model: $("chat-model"),
  conn: $("connection-status"),
  connText: $("connection-text"),
  connRetry: $("connection-retry"),
  connSaid: $("connection-said"),
  jump: $("jump-latest"),
  announce: $("sr-status"),
  files: $("composer-files"),
  filesNote: $("composer-files-note"),
};
const files = new ComposerFiles({
  list: ui.files, picker: $("file-picker"), button: $("attach-button"),
  zones: [ui.form, ui.scroller], onChange: () => updateComposer(),
});

const store = new ThreadStore();
const views = new Map();      // turn id -> TurnView (only turns on the visible path)
const pending = new Map();    // client_id -> {text, parent_id}: sent, not yet acknowledged
let socket = null;
let loaded = !config.conversation;  // an empty new-chat page has nothing to load
let online = false;
let syncRequested = false;
let frame = 0;
let lastRenderMs = 0;
let renders = 0;
let stickToBottom = true;
let starting = false;         // the new-chat page is creating its conversation
let lastStatus = null;        // of the newest visible turn, to announce when it ends

const actions = {
  regenerate(turnId) {
    return sendReliable({ type: "regenerate", turn_id: turnId, client_id: newClientId() }, null);
  },
  edit(turn, text) {
    return sendMessage(text, turn.parent_id || null);
  },
  /** Show another version of a message, keeping it where it is on the screen. */
  select(turnId) {
    const at = visiblePath().findIndex((t) => {  // the version shown now, beside the one asked for
      const { prev, next } = store.siblings(t);
      return prev === turnId || next === turnId;
    });
    const shown = at >= 0 && views.get(visiblePath()[at].id);
    const hold = shown ? { index: at, top: shown.el.getBoundingClientRect().top } : null;
    if (!socket || !socket.sendNow({ type: "select", turn_id: turnId })) {
      if (!store.turns.has(turnId)) {
        toast("Not connected; try again in a moment.");
        return;
      }
    }
    if (store.turns.has(turnId)) {
      store.select(turnId);
      anchor = hold;
    } else {
      anchorForBranch = hold;  // the branch comes from the server: hold the place till then
    }
    schedule();
  },
  siblings: (turn) => store.siblings(turn),
};

// --- frames from the server -------------------------------------------------------

// A list of turns comes in frames (each under the server's message limit): `snapshot`
// (or `branch`, `history`), then `….part`s, the last saying `complete`. It is used once it
// is whole.
const incoming = new Map();  // kind -> the frame being put together

function collect(kind, f, done) {
  const part = f.type.endsWith(".part");
  const whole = part ? incoming.get(kind) : { ...f, turns: [...(f.turns || [])] };
  if (!whole) return;  // the rest of a list this page did not see begin
  if (part) whole.turns.push(...(f.turns || []));
  incoming.set(kind, whole);
  if (f.complete !== false) {
    incoming.delete(kind);
    done(whole);
  }
}

let anchor = null;           // {index, top} or {id, top}: a turn to keep in place on screen
let anchorForBranch = null;  // the anchor of a version switch waiting for its branch
let earlierAsked = null;     // the id of the turn whose earlier turns were asked for

function loadSnapshot({ conversation, turns }) {
  syncRequested = false;
  earlierAsked = null;
  store.loadSnapshot(conversation, turns);
  for (const id of [...pending.keys()]) {
    if (store.findByClientId(id)) acknowledge(id);
  }
  showConversation(conversation);
  loaded = true;
}

function showBranch({ turns }) {
  store.showBranch(turns);
  anchor = anchorForBranch;
  anchorForBranch = null;
}

function addEarlier({ turn_id: below, turns }) {
  if (earlierAsked === below) earlierAsked = null;
  const view = views.get(below);
  if (view) anchor = { id: below, top: view.el.getBoundingClientRect().top };
  store.addEarlier(turns);
}

const HANDLERS = {
  snapshot: (f) => collect("snapshot", f, loadSnapshot),
  "snapshot.part": (f) => collect("snapshot", f, loadSnapshot),
  branch: (f) => collect("branch", f, showBranch),
  "branch.part": (f) => collect("branch", f, showBranch),
  history: (f) => collect("history", f, addEarlier),
  "history.part": (f) => collect("history", f, addEarlier),
  "turn.created"(f) {
    store.add(f.turn);
    acknowledge(f.turn.client_id);
    // The first message names the conversation; fetch the new title with the list.
    if (!store.conversation || !store.conversation.title) refreshSidebar().then(adoptSidebarTitle);
  },
  "turn.update"(f) {
    // An unknown turn belongs to a branch this page has not loaded: nothing to show.
    if (store.applyUpdate(f) === "gap") requestSync();
  },
  "turn.sync"(f) {
    const known = store.turns.get(f.turn.id);
    if (!known || (f.turn.seq || 0) >= known.seq) store.put(f.turn);
  },
  "conversation.updated"(f) {
    store.conversation = { ...store.conversation, ...f.conversation };
    showConversation(store.conversation);
  },
  error(f) {
    toast(f.message || "The server refused that.");
    const sent = f.client_id && pending.get(f.client_id);
    if (sent) {
      acknowledge(f.client_id);
      if (!ui.input.value.trim() && sent.text) ui.input.value = sent.text;  // nothing typed is lost
      if (sent.blocks && sent.blocks.length) files.restore(sent.blocks);  // nor any file
      autosize();
    }
    if (f.code === "not_found") requestSync();
    // The server dropped frames unread: what still waits for an answer goes again later.
    if (f.code === "rate_limited" && socket) {
      setTimeout(() => socket.resendPending(), (f.retry_after || 1) * 1000);
    }
  },
};

function onFrame(f) {
  const handler = HANDLERS[f && f.type];
  if (!handler) return;  // newer server, older page: ignore what we do not know
  handler(f);
  schedule();
}

function requestSync() {
  if (syncRequested || !socket) return;
  syncRequested = socket.sendNow({ type: "sync" });
}

function acknowledge(clientId) {
  if (!clientId) return;
  pending.delete(clientId);
  if (socket) socket.ack(clientId);
}

// --- the connection banner ------------------------------------------------------------

const connection = { state: null, detail: null, ticker: 0 };

function onState(state, detail) {
  online = state === "open";
  const lost = state === "offline" || state === "reconnecting";
  connection.state = state;
  connection.detail = detail;
  // A running reply gets no frames while this is not "online": the page says so (chat.css).
  document.body.dataset.connection = online ? "online" : state === "closed" ? "closed" : "offline";
  clearInterval(connection.ticker);
  // Ticks four times a second so the seconds shown stay in step; the text changes once a second.
  connection.ticker = lost ? setInterval(showConnection, 250) : 0;
  ui.conn.classList.toggle("fatal", state === "closed");
  if (!lost && document.activeElement === ui.connRetry) ui.input.focus();  // do not drop focus
  ui.connRetry.hidden = !lost;
  // Screen readers hear each change of state once, not the countdown (which is aria-hidden).
  const said = state === "closed" ? detail
    : lost ? "Connection lost. Reconnecting automatically."
      : online && ui.connSaid.textContent ? "Connection restored." : "";
  if (ui.connSaid.textContent !== said) ui.connSaid.textContent = said;
  showConnection();
  schedule();
}

function showConnection() {
  const text = connectionText(connection.state, connection.detail, Date.now());
  if (ui.connText.textContent !== text) ui.connText.textContent = text;
  ui.conn.hidden = !text;
}

function connectionText(state, detail, now) {
  if (state === "connecting") return "Connecting…";
  if (state === "closed") return detail;
  if (state !== "offline" && state !== "reconnecting") return "";
  const seconds = detail.retryAt ? Math.ceil((detail.retryAt - now) / 1000) : 0;
  const next = seconds > 0 ? `Reconnecting in ${seconds} s…` : "Reconnecting…";
  if (detail.reason) return `${detail.reason} ${next}`;
  return `Connection lost ${timeAgo(now - detail.since)}. ${next}`;
}

function timeAgo(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 1) return "just now";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}

function initConnectionBanner() {
  ui.connRetry.addEventListener("click", () => { if (socket) socket.retryNow(); });
}

// --- sending --------------------------------------------------------------------------

function sendMessage(text, parentId, blocks = []) {
  const frameOut = { type: "send", client_id: newClientId(), text, parent_id: parentId };
  if (blocks.length) frameOut.attachments = blocks.map((b) => b.attachment.id);
  return sendReliable(frameOut, text, blocks);
}

function sendReliable(frameOut, text, blocks = []) {
  if (!config.conversation) {
    startConversation(frameOut, text, blocks);
    return true;
  }
  pending.set(frameOut.client_id, { text, parent_id: frameOut.parent_id, blocks });
  settingsSettled().then(() => socket.sendReliable(frameOut));
  stickToBottom = true;
  schedule();
  return true;
}

/** The new-chat page has no conversation yet: create one, then send. */
async function startConversation(frameOut, text, blocks) {
  const form = document.getElementById("new-chat-form");
  starting = true;
  updateComposer();
  try {
    const response = await fetch(form.action, {
      method: "POST", body: new FormData(form), headers: { Accept: "application/json" },
    });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const created = await response.json();
    config.conversation = created.conversation;
    config.ws_url = created.ws_url;
    history.replaceState(null, "", created.url);
    document.body.dataset.conversationId = created.conversation.id;
    connect();
    sendReliable(frameOut, text, blocks);
    refreshSidebar();
    loadSettingsDialog(created);
  } catch (err) {
    toast(`Could not start a new chat (${err.message}).`);
    if (text && !ui.input.value) ui.input.value = text;
    files.restore(blocks);
  } finally {
    starting = false;
    updateComposer();
  }
}

function submitComposer() {
  const text = ui.input.value.trim();
  const blocks = takesFiles() ? files.blocks : [];
  if (!(text || blocks.length) || !canSend() || !filesReady()) return;
  const last = store.last();
  if (sendMessage(text, last ? last.id : null, blocks)) {
    ui.input.value = "";
    files.clear();
    autosize();
    updateComposer();
  }
}

/** Whether the conversation's model can see files (the offline one cannot). */
function takesFiles() {
  const conversation = config.conversation;
  return conversation ? conversation.takes_files !== false : config.takes_files !== false;
}

/** Nothing is still uploading, and no refused file waits to be removed. */
function filesReady() {
  return !files.count || (takesFiles() && !files.uploading && !files.refusedCount);
}

function canSend() {
  const last = store.last();
  return loaded && !starting && !pending.size && !(last && RUNNING.has(last.status));
}

function stop() {
  const last = store.last();
  if (!last || !RUNNING.has(last.status)) return;
  if (!socket.sendNow({ type: "stop", turn_id: last.id })) toast("Not connected; try again in a moment.");
}

// --- rendering --------------------------------------------------------------------------

function schedule() {
  if (frame) return;
  // A long reply can take longer than a frame to render: then leave the main thread
  // some breathing room so typing and scrolling stay smooth.
  if (lastRenderMs > 12) {
    frame = setTimeout(() => { frame = requestAnimationFrame(render); }, lastRenderMs * 2);
  } else {
    frame = requestAnimationFrame(render);
  }
}

function render() {
  frame = 0;
  const started = performance.now();
  const atBottom = stickToBottom || isNearBottom();
  const dirty = store.takeDirty();
  const path = visiblePath();
  const waiting = pendingForPath(path);
  const wanted = [];
  const alive = new Set();
  path.forEach((turn, i) => {
    let view = views.get(turn.id);
    const fresh = !view;
    if (fresh) {
      view = new TurnView(turn, actions);
      views.set(turn.id, view);
    }
    alive.add(turn.id);
    view.update(turn, fresh ? "all" : dirty.get(turn.id), {
      isLast: i === path.length - 1 && !waiting.length,
      siblings: store.siblings(turn),
      structured: Boolean(store.conversation && store.conversation.structured),
    });
    wanted.push(view.el);
  });
  for (const id of [...views.keys()]) {
    if (!alive.has(id)) views.delete(id);
  }
  for (const p of waiting) wanted.push(pendingView(p.text, online, p.blocks));
  if (loaded && store.hasEarlier()) wanted.unshift(earlierButton);
  reconcile(ui.list, wanted);
  ui.empty.hidden = !loaded || wanted.length > 0;
  ui.list.setAttribute("aria-busy", loaded ? "false" : "true");
  updateComposer();
  announce(path[path.length - 1]);
  if (anchor) keepInPlace(anchor, path, wanted);
  else if (atBottom) scrollToBottom();
  anchor = null;
  stickToBottom = false;
  loadEarlierIfNear();
  ui.jump.hidden = isNearBottom();
  lastRenderMs = performance.now() - started;
  renders += 1;
}

/** Scroll so that the anchored turn is where it was before this render. */
function keepInPlace(held, path, wanted) {
  const offset = wanted[0] === earlierButton ? 1 : 0;
  const view = held.id ? views.get(held.id) : null;
  const el = view ? view.el : held.index >= 0 ? ui.list.children[held.index + offset] : null;
  if (el) ui.scroller.scrollTop += el.getBoundingClientRect().top - held.top;
}

// Earlier turns of a long branch load as the person scrolls up to them (or clicks).
const earlierButton = Object.assign(document.createElement("button"), {
  type: "button", className: "earlier", textContent: "Show earlier messages",
});

function loadEarlier() {
  const first = store.path()[0];
  if (!first || !first.parent_id || earlierAsked === first.id || !socket) return;
  if (socket.sendNow({ type: "history", turn_id: first.id })) earlierAsked = first.id;
}

/** Near the top (or on a page too short to scroll), fetch the page above. */
function loadEarlierIfNear() {
  if (loaded && ui.scroller.scrollTop < 400 && store.hasEarlier()) loadEarlier();
}

function initEarlier() {
  earlierButton.addEventListener("click", loadEarlier);
  ui.scroller.addEventListener("scroll", loadEarlierIfNear, { passive: true });
}

/** The path, cut where a pending edit branches off (the edit shows in place at once). */
function visiblePath() {
  const path = store.path();
  for (const p of pending.values()) {
    if (p.text === null) continue;
    const cut = p.parent_id ? path.findIndex((t) => t.id === p.parent_id) + 1 : 0;
    if (cut > 0 || p.parent_id === null) return path.slice(0, cut);
  }
  return path;
}

function pendingForPath(path) {
  const tip = path.length ? path[path.length - 1].id : null;
  return [...pending.values()].filter((p) => p.text !== null && (p.parent_id || null) === tip);
}

/** Make `parent`'s children exactly `wanted`, moving only what is out of place. */
function reconcile(parent, wanted) {
  wanted.forEach((el, i) => {
    if (parent.children[i] !== el) parent.insertBefore(el, parent.children[i] || null);
  });
  while (parent.children.length > wanted.length) parent.lastElementChild.remove();
}

function isNearBottom() {
  const s = ui.scroller;
  return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
}

function scrollToBottom() {
  ui.scroller.scrollTop = ui.scroller.scrollHeight;
}

function updateComposer() {
  const last = store.last();
  const running = Boolean(last && RUNNING.has(last.status)) && !pending.size;
  ui.stop.hidden = !running;
  ui.send.hidden = running;
  const something = ui.input.value.trim() || (takesFiles() && files.blocks.length);
  ui.send.disabled = !something || !canSend() || !filesReady();
  ui.hint.textContent = !loaded ? "Loading the conversation…"
    : pending.size && !online ? "Offline — your message is queued."
      : filesHint();
  files.setEnabled(takesFiles());
  document.body.classList.toggle("no-files", !takesFiles());
  ui.filesNote.hidden = takesFiles();
}

function filesHint() {
  if (!files.count || !takesFiles()) return "";
  if (files.uploading) return "Uploading your files… the message can be sent once they are in.";
  if (files.refusedCount) return "Remove the refused file (×) to send the message.";
  return "";
}

/** Tell screen readers when the reply being written ends (the text itself is not read out
 * token by token: that would be noise). */
function announce(turn) {
  const status = turn ? turn.status : null;
  if (RUNNING.has(lastStatus) && !RUNNING.has(status) && turn) {
    const words = { completed: "Reply complete.", cancelled: "Reply stopped.", failed: "Reply failed." };
    ui.announce.textContent = words[status] || `Reply ${status}.`;
  }
  lastStatus = status;
}

/** Take the current conversation's title from the (freshly rendered) sidebar. */
function adoptSidebarTitle() {
  const id = config.conversation && config.conversation.id;
  const item = id && document.querySelector(`.conv[data-id="${CSS.escape(id)}"]`);
  const title = item && item.dataset.title;
  if (title && store.conversation && !store.conversation.title) {
    store.conversation.title = title;
    showConversation({ id, title });
  }
}

function showConversation(conversation) {
  if (!conversation) return;
  config.conversation = { ...config.conversation, ...conversation };
  if (conversation.title !== undefined) {
    ui.title.textContent = conversation.title || "New chat";
    document.title = `${conversation.title || "New chat"} · chatsite`;
    setSidebarTitle(conversation.id || config.conversation.id, conversation.title);
  }
  if (conversation.model) ui.model.textContent = conversation.model_label || conversation.model;
  showActiveSettings(conversation);
}

// --- composer -----------------------------------------------------------------------------

function autosize() {
  ui.input.style.height = "auto";
  ui.input.style.height = `${Math.min(ui.input.scrollHeight, 320)}px`;
}

function initComposer() {
  ui.form.addEventListener("submit", (e) => {
    e.preventDefault();
    submitComposer();
  });
  ui.input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      submitComposer();
    }
  });
  ui.input.addEventListener("input", () => {
    autosize();
    updateComposer();
  });
  ui.input.addEventListener("paste", (e) => files.paste(e));
  ui.stop.addEventListener("click", stop);
  ui.scroller.addEventListener("scroll", () => { ui.jump.hidden = isNearBottom(); }, { passive: true });
  ui.jump.addEventListener("click", () => {
    ui.scroller.scrollTo({ top: ui.scroller.scrollHeight, behavior: "smooth" });
  });
  ui.list.addEventListener("click", (e) => {
    const button = e.target.closest(".copy-code");
    if (!button) return;
    const code = button.closest(".code-block").querySelector("code");
    copyText(code ? code.textContent : "", button);
  });
}

function connect() {
  socket = new ChatSocket(config.ws_url, { onFrame, onState });
  socket.connect();
}

initComposer();
initConnectionBanner();
initEarlier();
initSidebar();
fadeServerToasts();
initSettings(config);
if (config.conversation) {
  connect();
} else {
  onState("open");
}
updateComposer();
ui.input.focus();
// Expose state for debugging in the console and for browser tests.
window.chatsite = {
  store,
  pending,
  files,
  get lastRenderMs() { return lastRenderMs; },
  get renders() { return renders; },
};
