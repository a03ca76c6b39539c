// longlink.js: a browser client for longlink (and leaf) servers over WebSocket.
// An ES module with no dependencies and no build step:
//
//   import { Client, Manifest } from './longlink.js';
//   const manifest = await Manifest.load('/manifest.json');
//   const client = await Client.connect('ws://127.0.0.1:3653/', { encoding: 'json', manifest });
//   client.on('S2C_Message', (body) => console.log(body.from_uid, body.text));
//   client.send('C2S_UserLogin', { token, login_plat: 0 });
//   const reply = await client.next('S2C_UserLogin');
//
// The wire codec (Manifest, RESUME_MESSAGES, encodeJson/decodeJson,
// encodeProtobuf/decodeProtobuf) lives in wire.js; this module re-exports all of it, so the
// import above works as it is. Wire: one WebSocket message is one payload, binary: JSON
// `{"Name": {...fields}}` or protobuf `| id: u16 big-endian | body |` (see wire.js).
//
// Session resume (opt-in; the server needs `[gate] resume_window` > 0):
//
//   const client = await Client.connect(url, { encoding, manifest, resume: true });
//   client.on('*', (body, name) => ...);            // application messages: once each, in order
//   client.on('reconnecting', ({ attempt, delayMs, code }) => ...);  // the socket dropped
//   client.on('resumed', ({ attempts, lastSeq, resent }) => ...);    // back, nothing lost
//   client.on('sessionLost', ({ reason }) => ...);  // gone: log in again (sends are kept)
//
// With it the client speaks longlink's LL_ messages (RESUME_MESSAGES; added to the manifest
// when it lacks them): it numbers the server's application messages and acknowledges them
// (LL_Ack every 32 messages or 200 ms), keeps what it sends until the server's LL_Ack covers
// it, and on a drop reconnects by itself (full-jitter backoff, 100 ms doubling to 3 s) and
// sends LL_Resume first; on LL_Resumed it resends what the server had not handled. Sends while disconnected are kept and go out after the resume. On
// LL_ResumeRefused{reason: "retry"} (the session is still there, moving it between gates
// failed) it drops that socket and tries again after its backoff. If the session
// cannot be resumed (LL_ResumeRefused, or `window_s` passed since the drop) it tells the app
// with 'sessionLost' and goes on with a fresh resumable session, on a new connection when
// needed. Without `resume` the client never sends an LL_ message: leaf's traffic, byte for
// byte, and a drop is a 'close'.

import {
  withDefaults, encodeJson, decodeJson, encodeProtobuf, decodeProtobuf, isResumeMessage,
} from './wire.js';

export * from './wire.js';

// ---------------------------------------------------------------- client

/** The WebSocket URL of the page's own server (`ws://host/` or `wss://host/`). */
export function defaultUrl(loc = globalThis.location) {
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/`;
}

const OPEN = 1; // WebSocket.OPEN

/** startSession()'s failure: the server did not answer LL_SessionStart (resume is off?). */
function noSession(why) {
  const e = new Error(`${why} (is the server's [gate] resume_window on?)`);
  e.name = 'ResumeUnavailableError';
  return e;
}

/** Session resume's timings; `startSession(options)` or `connect(url, {resume: options})`. */
export const RESUME_DEFAULTS = Object.freeze({
  initialDelayMs: 100,    // the first reconnection waits up to this (full jitter) ...
  maxDelayMs: 3000,       // ... doubling up to this
  connectTimeoutMs: 5000, // an attempt that has not opened (and been answered) by then fails
  startTimeoutMs: 5000,   // startSession() fails without LL_Session by then
  ackEvery: 32,           // LL_Ack after this many application messages ...
  ackDelayMs: 200,        // ... or this long after the first one not acknowledged
});

/** One connection: send messages by name, get them by name. */
export class Client {
  /**
   * Opens a connection. `encoding`: 'json' (default) or 'protobuf' (needs `manifest`).
   * `resume`: true (or timings, [`RESUME_DEFAULTS`]) makes the session resumable before
   * resolving ([`Client#startSession`]). `WebSocket`: the constructor to use (default the
   * global one). Resolves once open (and, with `resume`, once the server answered; if it does
   * not, rejects with an error named 'ResumeUnavailableError').
   */
  static connect(url, { encoding = 'json', manifest = null, resume = false, WebSocket: Ws } = {}) {
    if (encoding !== 'json' && encoding !== 'protobuf') throw new Error(`encoding ${encoding}?`);
    if (encoding === 'protobuf' && !manifest) throw new Error('protobuf needs a manifest');
    const client = new Client(url, encoding, manifest, { WebSocket: Ws });
    const opened = new Promise((resolve, reject) => {
      client.ws.addEventListener('open', () => resolve(client), { once: true });
      client.ws.addEventListener('error', () => reject(new Error(`cannot connect to ${url}`)), { once: true });
    });
    if (!resume) return opened;
    return opened.then((c) => c.startSession(resume === true ? {} : resume).then(
      () => c,
      (e) => { c.close(); throw e; },
    ));
  }

  #Ws;
  #sock = null; // the socket this client reads (null between two of a resumable session)
  #rs = null;   // the resumable session's state, once startSession() was called

  constructor(url, encoding, manifest, { WebSocket: Ws = globalThis.WebSocket } = {}) {
    this.url = url;
    this.encoding = encoding;
    this.manifest = manifest;
    this.handlers = new Map(); // name or '*' -> Set of callbacks
    this.waiters = [];         // {name, resolve, reject, timer}
    this.closed = false;
    /** `{token, windowS}` while the session is resumable, else null. */
    this.session = null;
    this.#Ws = Ws;
    this.ws = this.#open();
  }

  #open() {
    const ws = new this.#Ws(this.url);
    ws.binaryType = 'arraybuffer';
    this.#sock = ws;
    ws.addEventListener('message', (ev) => { if (ws === this.#sock) this.#receive(ev.data); });
    ws.addEventListener('close', (ev) => {
      if (ws !== this.#sock) return;
      if (this.#rs) { this.#socketGone(ws, ev.code); return; }
      this.closed = true;
      for (const w of this.waiters.splice(0)) {
        clearTimeout(w.timer);
        w.reject(new Error(`connection closed (${ev.code}) before ${w.name}`));
      }
      this.#emit('close', { code: ev.code, reason: ev.reason });
    });
    return ws;
  }

  /** Encodes one message. */
  encode(name, body = {}) {
    return this.encoding === 'json'
      ? encodeJson(name, this.manifest ? withDefaults(this.manifest.message(name), body) : body)
      : encodeProtobuf(this.manifest, name, body);
  }

  /** Decodes one payload into `{name, body}`. */
  decode(data) {
    return this.encoding === 'json'
      ? decodeJson(typeof data === 'string' ? data : new Uint8Array(data), this.manifest)
      : decodeProtobuf(this.manifest, new Uint8Array(data));
  }

  /**
   * Sends message `name` with `body` (fields by name; missing ones are their defaults). In a
   * resumable session it is kept until the server acknowledges it, and sent (again) after a
   * resume if need be: while reconnecting it waits for the resume.
   */
  send(name, body = {}) {
    const payload = this.encode(name, body);
    const rs = this.#rs;
    if (!rs) { this.ws.send(payload); return; }
    if (this.closed) throw new Error(`send ${name}: the client is closed`);
    rs.sent += 1;
    rs.kept.push({ seq: rs.sent, payload });
    if (rs.state === 'live' || rs.state === 'starting') this.#sock.send(payload);
  }

  /**
   * Calls `f(body, name)` for each message `name` ('*': every message; 'close': `{code,
   * reason}` once closed; 'error': a payload that did not decode). Returns an unsubscribe.
   * With a resumable session also 'session' `{token, windowS}` (it started, or started
   * afresh after a loss), 'reconnecting' `{attempt, delayMs, code}` (before each attempt),
   * 'resumed' `{attempts, lastSeq, resent}` and 'sessionLost' `{reason}` ("unknown",
   * "expired", "replaced", "overflow": log in again); 'close' then comes only from close(),
   * and LL_ messages are never handed to the application.
   */
  on(name, f) {
    if (!this.handlers.has(name)) this.handlers.set(name, new Set());
    this.handlers.get(name).add(f);
    return () => this.handlers.get(name).delete(f);
  }

  /** The next message called `name`, within `timeoutMs`. */
  next(name, timeoutMs = 5000) {
    return new Promise((resolve, reject) => {
      if (this.closed) { reject(new Error(`connection closed before ${name}`)); return; }
      const w = { name, resolve, reject };
      w.timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`no ${name} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /** Closes the connection (for good: a resumable session does not reconnect). */
  close(code = 1000) {
    if (!this.#rs) { this.ws.close(code); return; }
    if (this.closed) return;
    const ws = this.#sock;
    this.#sock = null;
    this.#finish(code, '');
    if (ws) try { ws.close(code); } catch { /* already closing */ }
  }

  /**
   * 'open', 'reconnecting' (no socket, or one not yet resumed) or 'closed'. Without a
   * resumable session: 'connecting', 'open' or 'closed' as the socket is.
   */
  get state() {
    if (this.closed) return 'closed';
    const rs = this.#rs;
    if (!rs) return ['connecting', 'open', 'closed', 'closed'][this.ws.readyState];
    return rs.state === 'live' || rs.state === 'starting' ? 'open' : 'reconnecting';
  }

  /** How many sent messages the server has not acknowledged yet (resumable sessions). */
  get unacked() { return this.#rs ? this.#rs.kept.length : 0; }

  /**
   * Makes the session resumable (LL_SessionStart); resolves with `{token, windowS}` once the
   * server answers. `options`: timings, [`RESUME_DEFAULTS`]. From then on a drop is not a
   * close: the client reconnects and resumes by itself.
   */
  startSession(options = {}) {
    if (this.#rs) return this.#rs.started;
    if (this.closed) return Promise.reject(new Error('startSession: the client is closed'));
    if (this.manifest) this.manifest = this.manifest.withResume();
    const rs = {
      opts: { ...RESUME_DEFAULTS, ...options },
      state: 'starting',
      received: 0,   // the server's application messages since LL_Session
      acked: 0,      // the last `received` acknowledged
      ackTimer: null,
      sent: 0,       // application messages sent since LL_SessionStart
      kept: [],      // {seq, payload} not acknowledged by the server
      attempt: 0,    // reconnection attempts since the drop
      dropAt: 0,     // when the socket dropped (0: not since the last resume)
      offlineUntil: 0,
      retryTimer: null,
      windowTimer: null,
      connectTimer: null,
      starting: null, // startSession()'s promise, until LL_Session
    };
    this.#rs = rs;
    rs.started = new Promise((resolve, reject) => {
      rs.starting = {
        resolve, reject,
        timer: setTimeout(() => {
          rs.starting = null;
          reject(noSession(`no LL_Session within ${rs.opts.startTimeoutMs} ms`));
        }, rs.opts.startTimeoutMs),
      };
    });
    const ws = this.#sock;
    if (ws.readyState === OPEN) this.#begin(ws);
    else ws.addEventListener('open', () => { if (ws === this.#sock) this.#begin(ws); }, { once: true });
    return rs.started;
  }

  /**
   * For tests and demos: drops the socket as a network failure would (the client is not
   * told by the server, it just loses the socket); with `offlineMs`, reconnection attempts
   * fail until then, as if the network were down. A resumable session reconnects and resumes;
   * any other client gets its 'close'.
   */
  dropConnection({ offlineMs = 0 } = {}) {
    const ws = this.#sock;
    if (this.#rs) {
      this.#rs.offlineUntil = Date.now() + offlineMs;
      if (ws) this.#socketGone(ws, 1006);
    }
    if (ws) try { ws.close(4000, 'dropped'); } catch { /* already closing */ }
  }

  // ------------------------------------------------------------ resumable session

  /** LL_SessionStart on open socket `ws`, then the messages kept for the new session. */
  #begin(ws) {
    const rs = this.#rs;
    rs.state = 'starting';
    ws.send(this.encode('LL_SessionStart', {}));
    for (const k of rs.kept) ws.send(k.payload);
  }

  /** `ws` is gone (closed, dropped or given up on). */
  #socketGone(ws, code) {
    const rs = this.#rs;
    if (ws !== this.#sock || this.closed) return;
    this.#sock = null;
    clearTimeout(rs.connectTimer);
    clearTimeout(rs.ackTimer);
    rs.ackTimer = null;
    if (rs.state === 'live') {
      rs.dropAt = Date.now();
      rs.windowTimer = setTimeout(() => this.#windowLapsed(), this.session.windowS * 1000);
    } else if (rs.state === 'starting') {
      if (rs.starting) { // the first session was never answered: startSession() fails
        const s = rs.starting;
        rs.starting = null;
        clearTimeout(s.timer);
        s.reject(noSession(`connection closed (${code}) before LL_Session`));
        this.#finish(code, 'no session');
        return;
      }
      // A fresh session that was never answered: what was sent in it may be lost.
      if (rs.kept.length > 0) this.#loseSession('unknown');
      if (this.closed) return;
    } // 'connecting' or 'resuming': that attempt failed
    this.#scheduleAttempt(code);
  }

  #scheduleAttempt(code) {
    const rs = this.#rs;
    rs.attempt += 1;
    rs.state = 'waiting';
    const cap = Math.min(rs.opts.maxDelayMs, rs.opts.initialDelayMs * 2 ** Math.min(rs.attempt - 1, 30));
    const delayMs = Math.floor(Math.random() * cap);
    rs.retryTimer = setTimeout(() => this.#attempt(), delayMs);
    this.#emit('reconnecting', { attempt: rs.attempt, delayMs, code });
  }

  #attempt() {
    const rs = this.#rs;
    rs.retryTimer = null;
    if (this.closed) return;
    if (this.session && rs.dropAt && Date.now() - rs.dropAt >= this.session.windowS * 1000) {
      this.#loseSession('expired');
      if (this.closed) return;
    }
    if (Date.now() < rs.offlineUntil) { this.#scheduleAttempt(1006); return; }
    rs.state = 'connecting';
    let ws;
    try {
      ws = this.#open();
    } catch {
      this.#scheduleAttempt(1006);
      return;
    }
    this.ws = ws;
    ws.addEventListener('open', () => this.#reopened(ws), { once: true });
    rs.connectTimer = setTimeout(() => {
      if (ws !== this.#sock) return;
      this.#socketGone(ws, 1006);
      try { ws.close(); } catch { /* not open */ }
    }, rs.opts.connectTimeoutMs);
  }

  /** A reconnection's socket opened: resume, or start afresh. */
  #reopened(ws) {
    const rs = this.#rs;
    if (ws !== this.#sock || this.closed) return;
    if (this.session) {
      rs.state = 'resuming'; // nothing else goes out until the answer (connectTimer bounds it)
      ws.send(this.encode('LL_Resume', { token: this.session.token, last_seq: rs.received }));
    } else {
      clearTimeout(rs.connectTimer);
      this.#begin(ws);
    }
  }

  #windowLapsed() {
    const rs = this.#rs;
    rs.windowTimer = null;
    if (this.closed || !this.session) return;
    // A resume already on its way is answered by the server (its window started later).
    if (rs.state === 'waiting' || rs.state === 'connecting') this.#loseSession('expired');
  }

  /** The session is gone: forget it, start afresh on the socket if it is open, tell the app. */
  #loseSession(reason) {
    const rs = this.#rs;
    this.session = null;
    rs.kept = [];
    rs.sent = 0;
    rs.received = 0;
    rs.acked = 0;
    rs.dropAt = 0;
    clearTimeout(rs.ackTimer);
    clearTimeout(rs.windowTimer);
    rs.ackTimer = rs.windowTimer = null;
    const ws = this.#sock;
    if (ws && ws.readyState === OPEN && (rs.state === 'live' || rs.state === 'resuming')) {
      clearTimeout(rs.connectTimer);
      rs.attempt = 0;
      this.#begin(ws);
    }
    this.#emit('sessionLost', { reason });
  }

  /** One of the protocol's messages from the server. */
  #protocol({ name, body }) {
    const rs = this.#rs;
    const ws = this.#sock;
    switch (name) {
      case 'LL_Session': {
        if (rs.state !== 'starting') return;
        this.session = { token: String(body.token), windowS: Number(body.window_s) };
        rs.state = 'live';
        rs.attempt = 0;
        rs.received = rs.acked = 0;
        const session = { ...this.session };
        if (rs.starting) {
          clearTimeout(rs.starting.timer);
          rs.starting.resolve(session);
          rs.starting = null;
        }
        this.#emit('session', session);
        return;
      }
      case 'LL_Resumed': {
        if (rs.state !== 'resuming') return;
        clearTimeout(rs.connectTimer);
        clearTimeout(rs.windowTimer);
        rs.windowTimer = null;
        const lastSeq = Number(body.last_seq);
        this.session.token = String(body.token);
        rs.kept = rs.kept.filter((k) => k.seq > lastSeq);
        rs.state = 'live';
        rs.acked = rs.received; // LL_Resume told the server as much
        rs.dropAt = 0;
        const attempts = rs.attempt;
        rs.attempt = 0;
        for (const k of rs.kept) ws.send(k.payload);
        this.#emit('resumed', { attempts, lastSeq, resent: rs.kept.length });
        return;
      }
      case 'LL_ResumeRefused':
        // "retry": the session is still there (moving it between gates failed): drop this
        // socket and resume again after the backoff, while the window lasts.
        if (rs.state === 'resuming' && body.reason === 'retry') {
          this.#socketGone(ws, 1006);
          try { ws.close(); } catch { /* already closing */ }
          return;
        }
        if (rs.state === 'resuming' || rs.state === 'live') this.#loseSession(String(body.reason || 'unknown'));
        return;
      case 'LL_Ack': {
        const seq = Number(body.seq);
        if (rs.state === 'live') rs.kept = rs.kept.filter((k) => k.seq > seq);
        return;
      }
      default: // a client-to-server one: ignored
    }
  }

  /** One more application message from the server: acknowledge it in time. */
  #counted() {
    const rs = this.#rs;
    rs.received += 1;
    if (rs.received - rs.acked >= rs.opts.ackEvery) this.#ack();
    else if (!rs.ackTimer) rs.ackTimer = setTimeout(() => this.#ack(), rs.opts.ackDelayMs);
  }

  #ack() {
    const rs = this.#rs;
    clearTimeout(rs.ackTimer);
    rs.ackTimer = null;
    if (rs.state !== 'live' || rs.received <= rs.acked) return;
    rs.acked = rs.received;
    this.#sock.send(this.encode('LL_Ack', { seq: rs.received }));
  }

  /** Closed for good: timers off, waiters refused, 'close'. */
  #finish(code, reason) {
    const rs = this.#rs;
    this.closed = true;
    rs.state = 'closed';
    for (const t of [rs.retryTimer, rs.windowTimer, rs.connectTimer, rs.ackTimer]) clearTimeout(t);
    if (rs.starting) {
      clearTimeout(rs.starting.timer);
      rs.starting.reject(new Error(`connection closed (${code}) before LL_Session`));
      rs.starting = null;
    }
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new Error(`connection closed (${code}) before ${w.name}`));
    }
    this.#emit('close', { code, reason });
  }

  // ------------------------------------------------------------ receiving

  #receive(data) {
    const rs = this.#rs;
    let msg;
    try {
      msg = this.decode(data);
    } catch (e) {
      if (rs && rs.state === 'live') this.#counted(); // the server numbered it all the same
      this.#emit('error', { error: e });
      return;
    }
    if (rs) {
      if (isResumeMessage(msg.name)) { this.#protocol(msg); return; }
      if (rs.state === 'live') this.#counted();
    }
    const i = this.waiters.findIndex((w) => w.name === msg.name);
    if (i >= 0) {
      const [w] = this.waiters.splice(i, 1);
      clearTimeout(w.timer);
      w.resolve(msg.body);
    }
    this.#emit(msg.name, msg.body);
    this.#emit('*', msg.body, msg.name);
  }

  #emit(name, body, realName = name) {
    for (const f of this.handlers.get(name) || []) {
      try { f(body, realName); } catch (e) { console.error(e); }
    }
  }
}
