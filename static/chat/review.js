// The read-only conversation page (an admin's review, a shared link). The turns of every
// branch come embedded in the page, and the chat page's own modules draw them: the same
// markdown, sanitizing, citations, thoughts, tool steps, errors and usage. No websocket and
// nothing to send: the "‹ 1/2 ›" switchers only change which version is on screen.

import { serveFilesFrom } from "./attachments.js";
import { copyText, h } from "./dom.js";
import { TurnView } from "./render.js";
import { ThreadStore } from "./thread.js";

const data = JSON.parse(document.getElementById("readonly-data").textContent);
// A shared link's files come through the link (a reviewer's through /files/, as the owner's).
if (data.files) serveFilesFrom(data.files);
const list = document.getElementById("turns");
const store = new ThreadStore();
const views = new Map();  // turn id -> TurnView, kept while switching versions

const actions = {
  select(turnId) {
    store.select(turnId);  // a version on another page of turns is not loaded: nothing happens
    render();
  },
  siblings: (turn) => store.siblings(turn),
};

function load() {
  store.conversation = data.conversation;
  for (const turn of data.turns) store.put(turn);
  const newest = data.turns.length ? data.turns[data.turns.length - 1].id : null;
  // The branch its owner had on screen, when it is on this page; else the newest turn here.
  const shown = store.turns.has(data.leaf) ? data.leaf : newest;
  if (shown) store.select(shown);
}

function render() {
  const path = store.path();
  const wanted = path.map((turn, i) => {
    let view = views.get(turn.id);
    const fresh = !view;
    if (fresh) {
      view = new TurnView(turn, actions);
      views.set(turn.id, view);
    }
    view.update(turn, fresh ? "all" : null, { isLast: i === path.length - 1, siblings: store.siblings(turn) });
    return view.el;
  });
  if (path.length && path[0].parent_id) {
    wanted.unshift(h("p", { class: "readonly-continued muted" },
      "This branch begins on an earlier page of turns."));
  }
  list.replaceChildren(...wanted);
  list.setAttribute("aria-busy", "false");
}

list.addEventListener("click", (e) => {
  const button = e.target.closest(".copy-code");
  if (!button) return;
  const code = button.closest(".code-block").querySelector("code");
  copyText(code ? code.textContent : "", button);
});

load();
render();
