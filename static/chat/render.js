// The DOM of one turn (the user's message and the model's reply). Steps are re-rendered
// only when they changed; the small chrome around them (status, actions, branch
// navigation) is rebuilt only when what it shows changed.

import { copyText, formatCount, h } from "./dom.js";
import { plainText } from "./markdown.js";
import { renderContent, renderStep } from "./steps.js";
import { RUNNING } from "./thread.js";

const STATUS_LINES = {
  queued: () => h("div", { class: "status waiting" }, h("span", { class: "spinner", "aria-hidden": "true" }),
    "Waiting for the local model…"),
  in_progress: () => h("div", { class: "status typing", role: "img", "aria-label": "The model is writing" },
    h("span"), h("span"), h("span")),
  cancelled: () => h("div", { class: "status stopped" }, "Stopped"),
  incomplete: () => h("div", { class: "status note" }, "The reply was cut short (output token limit)."),
  requires_action: () => h("div", { class: "status note" },
    "The model asked to call a function; this chat does not run functions."),
  completed: () => null,
};

export class TurnView {
  /**
   * @param {{regenerate?: Function, edit?: Function, select: Function, siblings: Function}} actions
   * An action left out is not offered (a read-only page has only `select` and `siblings`).
   */
  constructor(turn, actions) {
    this.id = turn.id;
    this.actions = actions;
    this.stepEls = [];
    this.liveIndex = -1;
    this.keys = {};
    this.editing = false;
    this.userBody = h("div", { class: "bubble" });
    this.userActions = h("div", { class: "msg-actions" });
    this.steps = h("div", { class: "steps" });
    this.json = false;  // the reply is structured output: its text shows as JSON
    this.check = h("div", { class: "output-check-line" });
    this.status = h("div", { class: "status-line" });
    this.replyActions = h("div", { class: "msg-actions reply-actions" });
    this.el = h("article", { class: "turn", "data-turn-id": turn.id },
      h("div", { class: "msg msg-user" }, this.userBody, this.userActions),
      h("div", { class: "msg msg-reply" }, this.steps, this.check, this.status, this.replyActions));
  }

  /** Bring the DOM up to date; `dirty` is "all" or a Set of changed step indexes. */
  update(turn, dirty, ctx) {
    this.turn = turn;
    const running = RUNNING.has(turn.status);
    this.el.classList.toggle("running", running);
    // Checked at the end of the turn; while it runs, the conversation's schema says.
    const json = Boolean(turn.output_check) || (running && Boolean(ctx.structured));
    if (json !== this.json) {
      this.json = json;
      dirty = "all";
    }
    if (dirty === "all" && !this.editing) this.renderInput(turn);
    this.renderSteps(turn, dirty, running);
    this.once("check", [turn.output_check], () => this.renderCheck(turn.output_check));
    this.once("status", [turn.status, turn.error && turn.error.message, running && turn.detail],
      () => this.renderStatus(turn));
    this.once("reply", [turn.status, ctx.isLast, turn.usage], () => this.renderReplyActions(turn, ctx));
    const sib = ctx.siblings;
    this.once("user", [sib.index, sib.count, this.editing, running], () => this.renderUserActions(turn, sib));
  }

  /** Run `render` only when `parts` differ from the last call with the same name. */
  once(name, parts, render) {
    const key = JSON.stringify(parts);
    if (this.keys[name] === key) return;
    this.keys[name] = key;
    render();
  }

  renderInput(turn) {
    const blocks = Array.isArray(turn.input) ? turn.input : [];
    const nodes = blocks.map((b) => (b && b.type === "text" ? plainText(b.text || "") : renderContent(b)));
    this.userBody.replaceChildren(...nodes.filter(Boolean));
  }

  renderSteps(turn, dirty, running) {
    const live = running ? turn.steps.length - 1 : -1;
    const indexes = dirty === "all" ? turn.steps.map((_, i) => i) : [...(dirty || [])];
    if (live !== this.liveIndex) indexes.push(this.liveIndex, live);  // the caret moves
    this.liveIndex = live;
    if (dirty === "all") {
      this.steps.replaceChildren();
      this.stepEls = [];
    }
    for (const i of new Set(indexes)) {
      if (i >= 0 && i < turn.steps.length) this.renderStepAt(i, turn.steps[i], i === live);
    }
  }

  renderStepAt(i, step, live) {
    const old = this.stepEls[i];
    const wasOpen = old && old.tagName === "DETAILS" ? old.open : null;
    const el = renderStep(step, live, { json: this.json }) || h("div", { class: "step-empty" });
    if (el === old) return;  // updated in place (a streaming reply)
    if (wasOpen !== null && el.tagName === "DETAILS") el.open = wasOpen;
    if (old) {
      old.replaceWith(el);
    } else {
      // Steps can arrive out of order only across a gap; place by index anyway.
      const next = this.stepEls.slice(i + 1).find(Boolean);
      this.steps.insertBefore(el, next || null);
    }
    this.stepEls[i] = el;
  }

  /** Structured output: whether the reply is JSON that follows the schema (server-checked). */
  renderCheck(check) {
    if (!check) {
      this.check.replaceChildren();
      return;
    }
    this.check.replaceChildren(check.valid
      ? h("div", { class: "output-check valid" }, h("span", { class: "badge-ok" }, "Valid"),
        " The reply follows the response schema.")
      : h("div", { class: "output-check invalid", role: "note" },
        h("span", { class: "badge-error" }, "Does not validate"), " ", check.error || ""));
  }

  renderStatus(turn) {
    if (turn.status === "failed") {
      const message = (turn.error && turn.error.message) || "The reply failed.";
      this.status.replaceChildren(h("div", { class: "status failed", role: "alert" },
        h("span", {}, message),
        this.actions.regenerate && h("button", { type: "button", class: "btn btn-small",
          onclick: () => this.actions.regenerate(turn.id) }, "Retry")));
      return;
    }
    // What the turn waits for before the model starts: "Uploading video.mp4 (40%)…".
    if (RUNNING.has(turn.status) && typeof turn.detail === "string" && turn.detail) {
      this.status.replaceChildren(h("div", { class: "status waiting", role: "status" },
        h("span", { class: "spinner", "aria-hidden": "true" }), turn.detail));
      return;
    }
    // Every turn starts "queued"; only a backend that reports waiting (the local model,
    // one generation at a time) shows the waiting line, the others show the model writing.
    const waiting = turn.status === "queued" && turn.interaction_id;
    const line = STATUS_LINES[turn.status === "queued" && !waiting ? "in_progress" : turn.status];
    this.status.replaceChildren((line ? line() : h("div", { class: "status note" }, turn.status)) || "");
  }

  renderReplyActions(turn, ctx) {
    const running = RUNNING.has(turn.status);
    const children = [];
    const usage = usageText(turn.usage);
    if (usage) children.push(h("span", { class: "usage", title: usage.title }, usage.text));
    if (!running && replyText(turn)) {
      children.push(h("button", { type: "button", class: "icon-btn", "aria-label": "Copy reply", title: "Copy reply",
        onclick: (e) => copyText(replyText(turn), e.currentTarget) }, "Copy"));
    }
    // A failed reply already offers Retry beside its message: one retry action, not two.
    if (ctx.isLast && !running && turn.status !== "failed" && this.actions.regenerate) {
      children.push(h("button", { type: "button", class: "icon-btn", "aria-label": "Regenerate", title: "Regenerate",
        onclick: () => this.actions.regenerate(turn.id) }, "↻ Regenerate"));
    }
    this.replyActions.replaceChildren(...children);
  }

  renderUserActions(turn, sib) {
    const children = [];
    if (sib.count > 1) {
      children.push(h("nav", { class: "branches", "aria-label": "Versions of this message" },
        h("button", { type: "button", class: "icon-btn", "aria-label": "Previous version", disabled: !sib.prev,
          onclick: () => this.actions.select(sib.prev) }, "‹"),
        h("span", { class: "branch-pos" }, `${sib.index + 1}/${sib.count}`),
        h("button", { type: "button", class: "icon-btn", "aria-label": "Next version", disabled: !sib.next,
          onclick: () => this.actions.select(sib.next) }, "›")));
    }
    if (!this.editing && inputText(turn) !== null && this.actions.edit) {
      children.push(h("button", { type: "button", class: "icon-btn", "aria-label": "Edit", title: "Edit message",
        onclick: () => this.startEdit() }, "Edit"));
    }
    this.userActions.replaceChildren(...children);
  }

  startEdit() {
    const turn = this.turn;
    this.editing = true;
    const area = h("textarea", { class: "edit-area", "aria-label": "Edit message", rows: 3 });
    area.value = inputText(turn) || "";
    const save = () => {
      const text = area.value.trim();
      if (!text) return;
      if (this.actions.edit(turn, text)) this.stopEdit();
    };
    area.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        save();
      } else if (e.key === "Escape") {
        this.stopEdit();
      }
    });
    this.userBody.replaceChildren(h("div", { class: "edit-box" }, area,
      h("div", { class: "edit-buttons" },
        h("button", { type: "button", class: "btn", onclick: () => this.stopEdit() }, "Cancel"),
        h("button", { type: "button", class: "btn btn-primary", onclick: save }, "Save and send"))));
    this.el.classList.add("editing");
    this.keys.user = null;
    this.renderUserActions(turn, this.actions.siblings(turn));
    area.focus();
    area.setSelectionRange(area.value.length, area.value.length);
  }

  stopEdit() {
    this.editing = false;
    this.el.classList.remove("editing");
    this.renderInput(this.turn);
    this.keys.user = null;
    this.renderUserActions(this.turn, this.actions.siblings(this.turn));
  }
}

/** A message sent but not yet acknowledged by the server. */
export function pendingView(text, online, blocks = []) {
  return h("article", { class: "turn pending" },
    h("div", { class: "msg msg-user" }, h("div", { class: "bubble" }, blocks.map(renderContent),
      text ? plainText(text) : null)),
    h("div", { class: "msg msg-reply" }, h("div", { class: "status waiting" },
      h("span", { class: "spinner", "aria-hidden": "true" }),
      online ? "Sending…" : "Offline — the message will be sent when the connection returns.")));
}

/** The text of the user's message, or null when it is not plain text only. */
export function inputText(turn) {
  const blocks = Array.isArray(turn.input) ? turn.input : [];
  if (!blocks.length || !blocks.every((b) => b && b.type === "text")) return null;
  return blocks.map((b) => b.text || "").join("\n");
}

function replyText(turn) {
  return turn.steps.filter((s) => s && s.type === "model_output" && Array.isArray(s.content))
    .flatMap((s) => s.content.filter((b) => b && b.type === "text").map((b) => b.text || ""))
    .join("\n\n");
}

function usageText(usage) {
  if (!usage || typeof usage !== "object") return null;
  const parts = [];
  const fields = [["total_input_tokens", "in"], ["total_output_tokens", "out"],
    ["total_thought_tokens", "thinking"], ["total_tokens", "total"]];
  for (const [field, label] of fields) {
    if (Number.isFinite(usage[field])) parts.push(`${formatCount(usage[field])} ${label}`);
  }
  if (!parts.length) return null;
  const title = fields.filter(([f]) => Number.isFinite(usage[f])).map(([f]) => `${f}: ${usage[f]}`).join("\n");
  return { text: `${parts.join(" · ")} tokens`, title };
}
