// JSON-RPC 2.0 (docs/API.md) over the websocket /api: one text message one request,
// answer or notification.

class RpcError extends Error {
  constructor(error) {
    super(error.message);
    this.code = error.code;
    this.exit = error.data?.exit;
  }
}

const KEY_ITEM = "nymchat.api-key";

// The session's key, which the API's websocket needs besides the cookie: the link's
// redirect gives it in the address's fragment (never sent to a server); it is kept in this
// origin's storage (another port of this machine is another origin and cannot read it) and
// dropped from the address bar.
function apiKey() {
  const given = /^#key=([A-Za-z0-9_-]{1,128})$/.exec(location.hash);
  if (given) {
    localStorage.setItem(KEY_ITEM, given[1]);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return localStorage.getItem(KEY_ITEM);
}

/** One websocket at a time to /api: requests matched to answers by id, events handed to
 * `handlers.event`; a lost connection is retried with backoff (`handlers.lost`, then
 * `handlers.open` again). */
export class Rpc {
  constructor(handlers) {
    this.handlers = handlers;
    this.ws = null;
    this.next = 1;
    this.waiting = new Map();
    this.delay = 500;
    this.planned = false;
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const key = apiKey();
    const protocols = key ? ["nymchat", `key.${key}`] : ["nymchat"];
    const ws = new WebSocket(`${scheme}://${location.host}/api`, protocols);
    this.ws = ws;
    ws.addEventListener("open", () => {
      this.delay = 500;
      this.handlers.open();
    });
    ws.addEventListener("message", (e) => this.receive(e.data));
    ws.addEventListener("close", () => this.closed(ws));
  }

  receive(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    for (const m of Array.isArray(message) ? message : [message]) {
      if (m?.method === "event" && m.params) {
        this.handlers.event(m.params);
        continue;
      }
      const waiter = this.waiting.get(m?.id);
      if (waiter === undefined) continue;
      this.waiting.delete(m.id);
      if (m.error) waiter.reject(new RpcError(m.error));
      else waiter.resolve(m.result);
    }
  }

  closed(ws) {
    if (ws !== this.ws) return;
    for (const waiter of this.waiting.values()) {
      waiter.reject(new RpcError({ code: 0, message: "connection to nymchat web lost" }));
    }
    this.waiting.clear();
    const planned = this.planned;
    this.planned = false;
    if (!planned) this.handlers.lost();
    setTimeout(() => this.connect(), planned ? 0 : this.delay);
    if (!planned) this.delay = Math.min(this.delay * 2, 8000);
  }

  /** A new connection, on purpose: once setup is done the engine serves the next one. */
  restart() {
    this.planned = true;
    this.ws.close();
  }

  call(method, params) {
    if (this.ws?.readyState !== WebSocket.OPEN) {
      return Promise.reject(new RpcError({ code: 0, message: "not connected to nymchat web" }));
    }
    const id = this.next++;
    const request = { jsonrpc: "2.0", id, method };
    if (params !== undefined) request.params = params;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.ws.send(JSON.stringify(request));
    });
  }
}
