// The conversation tree as the browser knows it: turns, per-turn sequence numbers,
// the selected sibling at each branch point, and the visible path through the tree.

const ROOT = "";  // key of the children of the root (turns whose parent_id is null)

export const RUNNING = new Set(["queued", "in_progress"]);

export class ThreadStore {
  constructor() {
    this.conversation = null;
    this.turns = new Map();     // id -> turn (as sent by the server, mutated by ops)
    this.selected = new Map();  // parent key -> id of the sibling the user looks at
    this.dirty = new Map();     // id -> Set of changed step indexes, or "all"
    this.order = 0;             // arrival order breaks ties between equal `created`
    this.kids = null;           // parent key -> children oldest first; rebuilt after changes
  }

  loadSnapshot(conversation, turns) {
    this.conversation = conversation;
    this.turns.clear();
    this.kids = null;
    for (const turn of turns) this.put(turn);
    // Keep the user's branch choices that still exist; the rest fall back to the newest.
    for (const [key, id] of this.selected) {
      if (!this.turns.has(id)) this.selected.delete(key);
    }
  }

  /** Add or replace a whole turn (snapshot entry, turn.created, turn.sync). */
  put(turn) {
    const old = this.turns.get(turn.id);
    turn._order = old ? old._order : this.order++;
    turn.steps = Array.isArray(turn.steps) ? turn.steps : [];
    turn.seq = Number.isInteger(turn.seq) ? turn.seq : 0;
    this.turns.set(turn.id, turn);
    this.kids = null;
    this.markDirty(turn.id, "all");
    return turn;
  }

  /** A turn that was just created: it becomes the visible sibling, as a new version should. */
  add(turn) {
    const known = this.turns.get(turn.id);
    // A re-announced turn (idempotent resend) must not roll back progress we already have.
    if (known && known.seq >= (turn.seq || 0)) return known;
    this.put(turn);
    this.selected.set(keyOf(turn.parent_id), turn.id);
    return turn;
  }

  /**
   * Apply a turn.update frame. Returns "applied", "stale" (already included),
   * "gap" (frames are missing: ask for a sync) or "unknown" (turn not known yet).
   */
  applyUpdate(frame) {
    const turn = this.turns.get(frame.turn_id);
    if (!turn) return "unknown";
    if (frame.seq <= turn.seq) return "stale";
    if (frame.seq > turn.seq + 1) return "gap";
    const changed = applyOps(turn.steps, frame.ops || []);
    for (const field of ["status", "usage", "error", "interaction_id"]) {
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

  children(parentId) {
    if (!this.kids) {
      // One pass over all turns, reused by every lookup until the tree changes.
      this.kids = new Map();
      for (const turn of this.turns.values()) {
        const key = keyOf(turn.parent_id);
        if (!this.kids.has(key)) this.kids.set(key, []);
        this.kids.get(key).push(turn);
      }
      for (const list of this.kids.values()) list.sort(byAge);
    }
    return this.kids.get(keyOf(parentId)) || [];
  }

  /** The sibling shown under `parentId`: the user's choice, else the newest. */
  visibleChild(parentId) {
    const kids = this.children(parentId);
    if (!kids.length) return null;
    const chosen = this.selected.get(keyOf(parentId));
    return kids.find((t) => t.id === chosen) || kids[kids.length - 1];
  }

  /** Root-to-leaf path following the selected sibling at every level. */
  path() {
    const path = [];
    const seen = new Set();
    let turn = this.visibleChild(null);
    while (turn && !seen.has(turn.id)) {
      seen.add(turn.id);
      path.push(turn);
      turn = this.visibleChild(turn.id);
    }
    return path;
  }

  /** Position of a turn among its siblings, for the "‹ 1/2 ›" control. */
  siblings(turn) {
    const kids = this.children(turn.parent_id);
    const index = kids.findIndex((t) => t.id === turn.id);
    return { index, count: kids.length, prev: kids[index - 1] || null, next: kids[index + 1] || null };
  }

  select(turnId) {
    const turn = this.turns.get(turnId);
    if (turn) this.selected.set(keyOf(turn.parent_id), turn.id);
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

function byAge(a, b) {
  if (a.created !== b.created) return (a.created || "") < (b.created || "") ? -1 : 1;
  return a._order - b._order;
}
