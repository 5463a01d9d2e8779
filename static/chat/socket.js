// The conversation websocket: reconnects with backoff, and keeps `send`/`regenerate`
// frames until the server acknowledges them, resending on every reconnect (the
// server deduplicates by client_id, so a resend never creates a second turn).
//
// States reported to onState: "connecting" (the first attempt), "open" (the server has
// sent a frame), "offline" (waiting to retry; detail {since, retryAt, reason}: reason is
// set when the server refused the socket for now rather than the connection dropping),
// "reconnecting"
// (an attempt after a loss; detail {since, retryAt: null}), "closed" (fatal; detail is
// the message). `since` and `retryAt` are Date.now() values.

const FATAL_CLOSE = {
  4401: "You have been logged out. Reload the page to sign in again.",
  4403: "This connection was refused.",
  4404: "This conversation does not exist or is not yours.",
};
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];
// Closes that are not a lost connection: reconnect, after this long, saying why.
const CLOSE_REAUTHENTICATE = 4001;  // the sign-in changed: the handshake checks it again
const REFUSED_FOR_NOW = {
  4429: { reason: "Too many tabs of this site are open for your account: close some.", ms: 15000 },
};

export class ChatSocket {
  /**
   * @param {string} url absolute ws(s):// URL, or a path on this host
   * @param {{onFrame: Function, onState: Function}} handlers
   */
  constructor(url, { onFrame, onState }) {
    this.url = absoluteWsUrl(url);
    this.onFrame = onFrame;
    this.onState = onState;
    this.pending = new Map();  // client_id -> frame not yet acknowledged
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.closedForGood = false;
    this.state = null;
    this.lostAt = null;  // when the connection was lost; cleared only by a received frame
    window.addEventListener("online", () => this.reconnectNow());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.reconnectNow();
    });
  }

  get isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  connect() {
    if (this.closedForGood) return;
    clearTimeout(this.timer);
    this.timer = null;
    if (this.lostAt === null) this.setState("connecting");
    else this.setState("reconnecting", { since: this.lostAt, retryAt: null });
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.addEventListener("open", () => this.opened(ws));
    ws.addEventListener("message", (event) => this.received(event));
    ws.addEventListener("close", (event) => this.closed(ws, event));
  }

  opened(ws) {
    if (ws !== this.ws) return;
    // Not "open" yet: a socket that closes before its first frame is no recovery.
    this.resendPending();
  }

  received(event) {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    this.attempt = 0;  // the server talks to us: the connection is healthy
    this.lostAt = null;
    if (this.state !== "open") this.setState("open");
    this.onFrame(frame);
  }

  closed(ws, event) {
    if (ws !== this.ws) return;
    this.ws = null;
    const fatal = FATAL_CLOSE[event.code];
    if (fatal) {
      this.closedForGood = true;
      this.setState("closed", fatal);
      return;
    }
    if (event.code === CLOSE_REAUTHENTICATE) {
      // A moment's wait lets the request that changed the sign-in (a new password's new
      // session cookie) finish first.
      this.setState("reconnecting", { since: Date.now(), retryAt: null });
      this.timer = setTimeout(() => this.connect(), 1000);
      return;
    }
    if (this.lostAt === null) this.lostAt = Date.now();
    const refused = REFUSED_FOR_NOW[event.code];
    // Jitter spreads the reconnects of many tabs after a server restart.
    const base = refused ? refused.ms : BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    const delay = base * (0.75 + Math.random() / 2);
    this.attempt += 1;
    this.timer = setTimeout(() => this.connect(), delay);
    this.setState("offline", { since: this.lostAt, retryAt: Date.now() + delay,
      reason: refused ? refused.reason : null });
  }

  /** Connect now if not connected and not already trying (the browser came back online). */
  reconnectNow() {
    if (this.closedForGood || this.ws) return;
    this.connect();
  }

  /** The person asked: skip the wait, and give up an attempt that is still hanging. */
  retryNow() {
    if (this.closedForGood || this.isOpen) return;
    const hanging = this.ws;
    if (hanging) {
      this.ws = null;  // its close event is then ignored
      hanging.close();
    }
    this.connect();
  }

  setState(state, detail) {
    this.state = state;
    this.onState(state, detail);
  }

  /** Send a frame that must arrive exactly once (`send`, `regenerate`): kept until acked. */
  sendReliable(frame) {
    this.pending.set(frame.client_id, frame);
    this.transmit(frame);
  }

  /** Send a frame only if connected now; returns whether it went out. */
  sendNow(frame) {
    return this.transmit(frame);
  }

  /** Send again every frame still waiting for its acknowledgement. */
  resendPending() {
    for (const frame of this.pending.values()) this.transmit(frame);
  }

  ack(clientId) {
    return this.pending.delete(clientId);
  }

  transmit(frame) {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }
}

export function newClientId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // crypto.randomUUID needs a secure context; plain-http LAN deployments still get a v4 UUID.
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function absoluteWsUrl(url) {
  if (/^wss?:\/\//.test(url)) return url;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${url}`;
}
