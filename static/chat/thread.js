// The conversation tree as far as the browser has loaded it: turns, per-turn sequence
// numbers, the versions (siblings) of each message, and the branch on screen.

const ROOT = "";  // key of the children of the root (turns whose parent_id is null)

export const RUNNING = new Set(["queued", "in_progress"]);

export class ThreadStore {
  constructor() {
    this.conversation = null;
    this.turns = new Map();     // id -> turn (as sent by the server, mutated by ops)
    this.kids = new Map();      // parent key -> ids of its children, oldest first
    this.leaf = null;           // id of the last turn of the branch on screen
    this.dirty = new Map();     // id -> Set of changed step indexes, or "all"
  }

  /**
   * The server sends the branch on screen, newest turns only: each turn lists its
   * `siblings`, and older turns (and other branches) come when asked for.
   */
  loadSnapshot(conversation, turns) {
    this.conversation = conversation;
    this.turns.clear();
    this.kids.clear();
    this.showBranch(turns);
  }

  /** Turns of a branch, root side first, ending at its leaf: that branch is shown. */
  showBranch(turns) {
    for (const turn of turns) this.put(turn);
    if (turns.length) this.leaf = turns[turns.length - 1].id;
    else if (!this.turns.size) this.leaf = null;
  }

  /** Turns just above the top of the branch on screen (scrolling up). */
  addEarlier(turns) {
    for (const turn of turns) this.put(turn);
  }

  /** Add or replace a whole turn (snapshot entry, turn.created, turn.sync). */
  put(turn) {
    turn.steps = Array.isArray(turn.steps) ? turn.steps : [];
    turn.seq = Number.isInteger(turn.seq) ? turn.seq : 0;
    this.turns.set(turn.id, turn);
    const key = keyOf(turn.parent_id);
    if (Array.isArray(turn.siblings)) {
      this.kids.set(key, [...turn.siblings]);
    } else {
      const kids = this.kids.get(key) || [];
      if (!kids.includes(turn.id)) this.kids.set(key, [...kids, turn.id]);
    }
    this.markDirty(turn.id, "all");
    return turn;
  }

  /** A turn that was just created: it becomes the version shown, as the server shows it. */
  add(turn) {
    const known = this.turns.get(turn.id);
    // A re-announced turn (idempotent resend) must not roll back progress we already have.
    if (known && known.seq >= (turn.seq || 0)) return known;
    this.put(turn);
    if (!turn.parent_id || this.turns.has(turn.parent_id)) this.leaf = turn.id;
    return turn;
  }

  /**
   * Apply a turn.update frame. Returns "applied", "stale" (already included),
   * "gap" (frames are missing: ask for a sync) or "unknown" (a turn of a branch this
   * page has not loaded).
   */
  applyUpdate(frame) {
    const turn = this.turns.get(frame.turn_id);
    if (!turn) return "unknown";
    if (frame.seq <= turn.seq) return "stale";
    if (frame.seq > turn.seq + 1) return "gap";
    const changed = applyOps(turn.steps, frame.ops || []);
    for (const field of ["status", "usage", "error", "interaction_id", "detail", "output_check"]) {
      if (field in frame) turn[field] = frame[field];
    }
    turn.seq = frame.seq;
    this.markDirty(turn.id, changed);
    return "applied";
  }

  markDirty(id, steps) {
    const current = this.dirty.get(id);
    if (steps === "all" || current === "all") {
      this.dirty.set(id, "all");
      return;
    }
    const merged = current || new Set();
    for (const i of steps) merged.add(i);
    this.dirty.set(id, merged);
  }

  takeDirty() {
    const dirty = this.dirty;
    this.dirty = new Map();
    return dirty;
  }

  /** The branch on screen, as far up as it is loaded: root side first. */
  path() {
    const path = [];
    const seen = new Set();
    let turn = this.turns.get(this.leaf);
    while (turn && !seen.has(turn.id)) {
      seen.add(turn.id);
      path.push(turn);
      turn = turn.parent_id ? this.turns.get(turn.parent_id) : null;
    }
    return path.reverse();
  }

  /** Whether turns above the loaded part of the branch exist (to fetch on scrolling up). */
  hasEarlier() {
    const path = this.path();
    return Boolean(path.length && path[0].parent_id);
  }

  /** Position of a turn among its siblings, for the "‹ 1/2 ›" control (ids). */
  siblings(turn) {
    const kids = this.kids.get(keyOf(turn.parent_id)) || [turn.id];
    const index = Math.max(0, kids.indexOf(turn.id));
    return { index, count: kids.length, prev: kids[index - 1] || null, next: kids[index + 1] || null };
  }

  /**
   * Show another version: at once as far as this page knows its branch (its newest turn
   * at each level), the rest when the server's `branch` frame arrives.
   */
  select(turnId) {
    let turn = this.turns.get(turnId);
    if (!turn) return;
    for (;;) {
      const kids = this.kids.get(turn.id);
      const newest = kids && this.turns.get(kids[kids.length - 1]);
      if (!newest) break;
      turn = newest;
    }
    this.leaf = turn.id;
  }

  findByClientId(clientId) {
    for (const turn of this.turns.values()) {
      if (turn.client_id === clientId) return turn;
    }
    return null;
  }

  last() {
    const path = this.path();
    return path[path.length - 1] || null;
  }
}

/** Apply protocol ops to a steps array in place; returns the set of step indexes touched. */
export function applyOps(steps, ops) {
  const changed = new Set();
  for (const op of ops) {
    const apply = OPS[op[0]];
    if (apply) {
      apply(steps, op);
      changed.add(op[1]);
    }
  }
  return changed;
}

const OPS = {
  step(steps, [, i, step]) {
    while (steps.length < i) steps.push({ type: "unknown" });
    steps[i] = step;
  },
  text(steps, [, i, b, text]) {
    const step = steps[i] || (steps[i] = { type: "model_output" });
    const content = Array.isArray(step.content) ? step.content : (step.content = []);
    while (content.length <= b) content.push({ type: "text", text: "" });
    content[b].text = (content[b].text || "") + text;
  },
};

function keyOf(parentId) {
  return parentId || ROOT;
}

