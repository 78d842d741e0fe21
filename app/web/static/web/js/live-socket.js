// One WebSocket that keeps itself alive: exponential back-off with jitter after any drop, an immediate retry when
// the browser comes back online, and a ping that notices a connection which died without a close frame.
//
// States (the "status" event's detail): "connecting", "live", "reconnecting", "offline", "denied".

const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 30_000;
const PING_EVERY_MS = 25_000;
const PONG_WITHIN_MS = 10_000;
// Close codes after which trying again cannot help (docs/protocol.md): not signed in; no such graph, or not yours.
const FINAL_CODES = new Set([4401, 4404]);

export function socketUrl(path) {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${window.location.host}${path}`;
}

export class LiveSocket extends EventTarget {
  /**
   * @param {string} path e.g. "/ws/graphs/1/"
   * @param {{heartbeat?: boolean, query?: () => string}} options heartbeat: send {"type": "ping"} and expect any
   *   message back; query: the query string of each (re)connect, e.g. the resume point "after_seq=12&epoch=ab".
   * Events: "open" (after every (re)connect), "message" (detail: decoded JSON),
   * "status" (detail: {state, delayMs?, code?}).
   */
  constructor(path, { heartbeat = false, query = null } = {}) {
    super();
    this.url = socketUrl(path);
    this.query = query;
    this.heartbeat = heartbeat;
    this.socket = null;
    this.attempts = 0;
    this.state = "idle";
    this.retryTimer = null;
    this.pingTimer = null;
    this.pongTimer = null;
    this.stopped = false;
    this.onOnline = () => this.reconnectNow();
    this.onOffline = () => this.drop("offline");
  }

  start() {
    this.stopped = false;
    window.addEventListener("online", this.onOnline);
    window.addEventListener("offline", this.onOffline);
    if (navigator.onLine === false) this.setState("offline");
    else this.connect();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener("online", this.onOnline);
    window.removeEventListener("offline", this.onOffline);
    this.discardSocket();
    clearTimeout(this.retryTimer);
    this.setState("idle");
  }

  /** Send a JSON message; false when not connected (the caller then uses REST or waits). */
  send(message) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  setState(state, extra = {}) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("status", { detail: { state, ...extra } }));
  }

  connect() {
    clearTimeout(this.retryTimer);
    this.discardSocket();
    this.setState(this.attempts === 0 ? "connecting" : "reconnecting");
    const socket = new WebSocket(this.query ? `${this.url}?${this.query()}` : this.url);
    this.socket = socket;
    socket.addEventListener("open", () => {
      if (socket !== this.socket) return;
      this.setState("live");
      this.schedulePing();
      this.dispatchEvent(new Event("open"));
    });
    socket.addEventListener("message", (event) => {
      if (socket !== this.socket) return;
      // Any message proves the connection works: the next drop starts the back-off from the beginning again.
      this.attempts = 0;
      clearTimeout(this.pongTimer);
      this.schedulePing();
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      this.dispatchEvent(new CustomEvent("message", { detail: message }));
    });
    socket.addEventListener("close", (event) => {
      if (socket !== this.socket) return;
      this.socket = null;
      this.clearTimers();
      if (FINAL_CODES.has(event.code)) {
        this.setState("denied", { code: event.code });
        return;
      }
      this.scheduleRetry();
    });
  }

  /** Forget the current socket without waiting for its close event (a dead connection may never send one). */
  discardSocket() {
    this.clearTimers();
    const socket = this.socket;
    this.socket = null;
    if (socket && socket.readyState <= WebSocket.OPEN) socket.close(1000);
  }

  drop(state) {
    if (this.stopped) return;
    this.discardSocket();
    clearTimeout(this.retryTimer);
    if (state === "offline") this.setState("offline");
    else this.scheduleRetry();
  }

  reconnectNow() {
    if (this.stopped || this.state === "denied") return;
    this.attempts = 0;
    this.connect();
  }

  scheduleRetry() {
    if (this.stopped) return;
    if (navigator.onLine === false) {
      this.setState("offline");
      return;
    }
    // Full jitter: anywhere between 0 and the exponential delay, so that the pages of a hall whose server restarted
    // (or drained them with 4012) come back spread over the whole interval, not all at its end.
    const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** this.attempts);
    const delayMs = Math.round(Math.random() * ceiling);
    this.attempts += 1;
    this.setState("reconnecting", { delayMs });
    this.retryTimer = setTimeout(() => this.connect(), delayMs);
  }

  schedulePing() {
    if (!this.heartbeat) return;
    clearTimeout(this.pingTimer);
    this.pingTimer = setTimeout(() => {
      if (!this.send({ type: "ping" })) return;
      this.pongTimer = setTimeout(() => this.drop("reconnecting"), PONG_WITHIN_MS);
    }, PING_EVERY_MS);
  }

  clearTimers() {
    clearTimeout(this.pingTimer);
    clearTimeout(this.pongTimer);
  }
}
