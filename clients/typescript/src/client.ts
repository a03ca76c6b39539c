// The client: one connection (or, with `resume`, one session across connections) to a
// longlink server; messages sent and received by name.
//
// Session resume (opt-in; the server needs `[gate] resume_window` > 0): the client speaks
// longlink's LL_ messages (crates/longlink-wire/src/resume.md). It numbers the server's
// application messages (all but LL_ ones and those the manifest marks `volatile`) and
// acknowledges them (LL_Ack every 32 messages or 200 ms), keeps what it sends until the
// server's LL_Ack covers it, and on a drop reconnects by itself (full-jitter backoff, 100 ms
// doubling to 3 s, through its addresses in turn) and sends LL_Resume first; on LL_Resumed
// it resends what the server had not handled. Sends while disconnected are kept and go out
// after the resume. LL_ResumeRefused{"retry"}: it drops that socket and tries again after
// its backoff. Any other refusal, or `window_s` passed since the drop: 'sessionLost', and a
// fresh resumable session. LL_Move{after_ms}: after that long it moves to the next address
// and resumes there. Without `resume` the client never sends an LL_ message: leaf's
// traffic, byte for byte, and a drop is a 'close'.

import { Codec } from './codec.js';
import { isProtocolMessage } from './manifest.js';
import { openSocket, type Socket } from './transport.js';
import {
  RESUME_DEFAULTS, type ClientEvents, type ClientOptions, type ResumeOptions, type SessionEvent,
} from './types.js';

/** Any message map: names to bodies. */
export type AnyMessages = Record<string, any>;

type Handler = (body: any, name: string) => void;
type Timer = ReturnType<typeof setTimeout> | null;
type RsState = 'starting' | 'live' | 'waiting' | 'connecting' | 'resuming' | 'closed';

interface Waiter { name: string; resolve(body: unknown): void; reject(e: Error): void; timer: Timer }
interface Kept { seq: number; payload: Uint8Array }
interface Resumable {
  opts: Required<ResumeOptions>;
  state: RsState;
  received: number; // the server's numbered messages since LL_Session
  acked: number;    // the last `received` acknowledged
  ackTimer: Timer;
  sent: number;     // application messages sent since LL_SessionStart
  kept: Kept[];     // not acknowledged by the server
  attempt: number;  // reconnection attempts since the drop
  dropAt: number;   // when the socket dropped (0: not since the last resume)
  offlineUntil: number;
  retryTimer: Timer;
  windowTimer: Timer;
  connectTimer: Timer;
  moveTimer: Timer;
  started: Promise<SessionEvent>;
  starting: { resolve(s: SessionEvent): void; reject(e: Error): void; timer: Timer } | null;
}

/** startSession()'s failure: the server did not answer LL_SessionStart (resume is off?). */
function noSession(why: string): Error {
  const e = new Error(`${why} (is the server's [gate] resume_window on?)`);
  e.name = 'ResumeUnavailableError';
  return e;
}

/** The WebSocket URL of the page's own server (`ws://host/` or `wss://host/`). */
export function defaultUrl(loc: { protocol: string; host: string } = (globalThis as any).location): string {
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/`;
}

/** One connection (or resumable session): send messages by name, get them by name. */
export class Client<M extends AnyMessages = AnyMessages> {
  /**
   * Opens a connection to `url` (`ws://`, `wss://` or `tcp://host:port`; with `addresses`,
   * the first of them that opens). Resolves once open and, with `resume`, once the server
   * answered `LL_SessionStart` (if it does not: rejects with an error named
   * 'ResumeUnavailableError').
   */
  static async connect<M extends AnyMessages = AnyMessages>(url: string, options: ClientOptions = {}): Promise<Client<M>> {
    const urls = [url, ...(options.addresses || [])];
    let last: unknown = null;
    for (let i = 0; i < urls.length; i++) {
      const client = new Client<M>(urls, i, options);
      try {
        await client.#opened;
      } catch (e) {
        last = e;
        continue;
      }
      if (!options.resume) return client;
      try {
        await client.startSession(options.resume === true ? {} : options.resume);
      } catch (e) {
        client.close();
        throw e;
      }
      return client;
    }
    throw last;
  }

  readonly codec: Codec;
  /** `{token, windowS}` while the session is resumable, else null. */
  session: SessionEvent | null = null;
  closed = false;
  readonly #urls: string[];
  #at: number;
  readonly #options: ClientOptions;
  readonly #handlers = new Map<string, Set<Handler>>();
  #waiters: Waiter[] = [];
  #sock: Socket | null = null;
  #open = false;
  #rs: Resumable | null = null;
  readonly #opened: Promise<void>;

  private constructor(urls: string[], at: number, options: ClientOptions) {
    this.#urls = urls;
    this.#at = at;
    this.#options = options;
    this.codec = new Codec(options.encoding || 'json', options.manifest || null, options.codecs);
    this.#opened = new Promise((resolve, reject) => {
      this.#connectSocket(() => resolve(), (code) => reject(new Error(`cannot connect to ${this.url} (${code})`)));
    });
  }

  /** The address in use (or being connected to). */
  get url(): string {
    return this.#urls[this.#at];
  }

  /** Opens a socket to the current address; `opened` / `failed` say how that went. */
  #connectSocket(opened: (s: Socket) => void, failed: (code: number) => void): void {
    let sock: Socket | null = null;
    let open = false;
    const events = {
      open: () => {
        open = true;
        if (!sock || sock !== this.#sock) return;
        this.#open = true;
        opened(sock);
      },
      message: (data: Uint8Array | string) => { if (sock && sock === this.#sock) this.#receive(data); },
      close: (code: number, reason: string) => {
        if (!sock || sock !== this.#sock) return;
        this.#open = false;
        if (!open) { failed(code); return; }
        this.#socketClosed(sock, code, reason);
      },
    };
    try {
      sock = openSocket(this.url, events, this.#options.WebSocket, this.#options);
    } catch (e) {
      if (!this.#rs) throw e; // a bad first address: connect() rejects
      return; // a reconnection: #attempt sees no socket and tries again
    }
    this.#sock = sock;
  }

  /** Encodes one message (no framing). */
  encode(name: string, body: object = {}): Uint8Array {
    return this.codec.encode(name, body);
  }

  /**
   * Sends message `name` with `body` (fields by name; missing ones are their defaults). In a
   * resumable session it is kept until the server acknowledges it, and sent (again) after a
   * resume if need be: while reconnecting it waits for the resume.
   */
  send<K extends keyof M & string>(name: K, body: Partial<M[K]> = {}): void {
    if (this.closed) throw new Error(`send ${name}: the client is closed`);
    const payload = this.encode(name, body);
    const rs = this.#rs;
    if (!rs) { this.#sock?.send(payload); return; }
    rs.sent += 1;
    rs.kept.push({ seq: rs.sent, payload });
    if (rs.state === 'live' || rs.state === 'starting') this.#sock?.send(payload);
  }

  /**
   * Calls `f(body, name)` for each message `name` ('*': every application message), or on
   * one of the client's events ('session', 'reconnecting', 'resumed', 'sessionLost',
   * 'moving', 'close', 'error'). Returns an unsubscribe.
   */
  on<E extends keyof ClientEvents>(name: E, f: (ev: ClientEvents[E]) => void): () => void;
  on<K extends keyof M & string>(name: K, f: (body: M[K], name: K) => void): () => void;
  on(name: '*', f: (body: M[keyof M], name: keyof M & string) => void): () => void;
  on(name: string, f: Handler): () => void {
    if (!this.#handlers.has(name)) this.#handlers.set(name, new Set());
    this.#handlers.get(name)!.add(f);
    return () => { this.#handlers.get(name)?.delete(f); };
  }

  /** The next message called `name`, within `timeoutMs`. */
  next<K extends keyof M & string>(name: K, timeoutMs = 5000): Promise<M[K]> {
    return new Promise((resolve, reject) => {
      if (this.closed) { reject(new Error(`connection closed before ${name}`)); return; }
      const w: Waiter = { name, resolve: resolve as (b: unknown) => void, reject, timer: null };
      w.timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((x) => x !== w);
        reject(new Error(`no ${name} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.push(w);
    });
  }

  /** Closes the connection for good (a resumable session ends: WebSocket close 1000). */
  close(code = 1000): void {
    if (this.closed) return;
    const sock = this.#sock;
    this.#sock = null;
    this.#open = false;
    this.#finish(code, '');
    sock?.close(code);
  }

  /** 'open', 'reconnecting' (no socket, or one not yet resumed), 'connecting' or 'closed'. */
  get state(): 'connecting' | 'open' | 'reconnecting' | 'closed' {
    if (this.closed) return 'closed';
    const rs = this.#rs;
    if (!rs) return this.#open ? 'open' : 'connecting';
    return rs.state === 'live' || rs.state === 'starting' ? 'open' : 'reconnecting';
  }

  /** How many sent messages the server has not acknowledged yet (resumable sessions). */
  get unacked(): number {
    return this.#rs ? this.#rs.kept.length : 0;
  }

  /**
   * Makes the session resumable (LL_SessionStart); resolves with `{token, windowS}` once the
   * server answers. From then on a drop is not a close: the client reconnects and resumes.
   */
  startSession(options: ResumeOptions = {}): Promise<SessionEvent> {
    if (this.#rs) return this.#rs.started;
    if (this.closed) return Promise.reject(new Error('startSession: the client is closed'));
    const rs: Resumable = {
      opts: { ...RESUME_DEFAULTS, ...options },
      state: 'starting', received: 0, acked: 0, ackTimer: null, sent: 0, kept: [], attempt: 0,
      dropAt: 0, offlineUntil: 0, retryTimer: null, windowTimer: null, connectTimer: null,
      moveTimer: null, started: null as unknown as Promise<SessionEvent>, starting: null,
    };
    this.#rs = rs;
    rs.started = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        rs.starting = null;
        reject(noSession(`no LL_Session within ${rs.opts.startTimeoutMs} ms`));
      }, rs.opts.startTimeoutMs);
      rs.starting = { resolve, reject, timer };
    });
    rs.started.catch(() => undefined); // the caller's to see; never unhandled here
    if (this.#open && this.#sock) this.#begin(this.#sock);
    return rs.started;
  }

  /**
   * For tests and demos: drops the socket as a network failure would; with `offlineMs`,
   * reconnection attempts fail until then. A resumable session reconnects and resumes;
   * any other client gets its 'close'.
   */
  dropConnection({ offlineMs = 0 } = {}): void {
    const sock = this.#sock;
    if (!sock) return;
    if (this.#rs) {
      this.#rs.offlineUntil = Date.now() + offlineMs;
      this.#socketGone(sock, 1006);
    }
    sock.close(4000, 'dropped');
  }

  // ------------------------------------------------------------ resumable session

  /** LL_SessionStart on open socket `sock`, then the messages kept for the new session. */
  #begin(sock: Socket): void {
    const rs = this.#rs!;
    rs.state = 'starting';
    sock.send(this.encode('LL_SessionStart', {}));
    for (const k of rs.kept) sock.send(k.payload);
  }

  /** An open socket closed: a drop for a resumable session, else the end. */
  #socketClosed(sock: Socket, code: number, reason: string): void {
    if (this.#rs) { this.#socketGone(sock, code); return; }
    this.#sock = null;
    this.closed = true;
    this.#rejectWaiters(code);
    this.#emit('close', { code, reason });
  }

  /** `sock` is gone (closed, dropped or given up on). */
  #socketGone(sock: Socket, code: number, delayMs?: number): void {
    const rs = this.#rs!;
    if (sock !== this.#sock || this.closed) return;
    this.#sock = null;
    this.#open = false;
    // Dropped while asked to move (LL_Move): this server is going away, go on to the next.
    if (rs.moveTimer && delayMs === undefined) this.#at = (this.#at + 1) % this.#urls.length;
    for (const t of [rs.connectTimer, rs.ackTimer, rs.moveTimer]) if (t) clearTimeout(t);
    rs.ackTimer = rs.moveTimer = null;
    if (rs.state === 'live') {
      rs.dropAt = Date.now();
      rs.windowTimer = setTimeout(() => this.#windowLapsed(), this.session!.windowS * 1000);
    } else if (rs.state === 'starting') {
      if (rs.starting) { // the first session was never answered: startSession() fails
        const s = rs.starting;
        rs.starting = null;
        if (s.timer) clearTimeout(s.timer);
        s.reject(noSession(`connection closed (${code}) before LL_Session`));
        this.#finish(code, 'no session');
        return;
      }
      // A fresh session that was never answered: what was sent in it may be lost.
      if (rs.kept.length > 0) this.#loseSession('unknown');
      if (this.closed) return;
    } else if (rs.state === 'connecting' || rs.state === 'resuming') {
      this.#at = (this.#at + 1) % this.#urls.length; // that attempt failed: the next address
    }
    this.#scheduleAttempt(code, delayMs);
  }

  #scheduleAttempt(code: number, delay?: number): void {
    const rs = this.#rs!;
    rs.attempt += 1;
    rs.state = 'waiting';
    const cap = Math.min(rs.opts.maxDelayMs, rs.opts.initialDelayMs * 2 ** Math.min(rs.attempt - 1, 30));
    const delayMs = delay ?? Math.floor(Math.random() * cap);
    rs.retryTimer = setTimeout(() => this.#attempt(), delayMs);
    this.#emit('reconnecting', { attempt: rs.attempt, delayMs, code, url: this.url });
  }

  #attempt(): void {
    const rs = this.#rs!;
    rs.retryTimer = null;
    if (this.closed) return;
    if (this.session && rs.dropAt && Date.now() - rs.dropAt >= this.session.windowS * 1000) {
      this.#loseSession('expired');
      if (this.closed) return;
    }
    if (Date.now() < rs.offlineUntil) { this.#scheduleAttempt(1006); return; }
    rs.state = 'connecting';
    this.#sock = null;
    this.#connectSocket(
      (opened) => this.#reopened(opened),
      (code) => { if (this.#sock) this.#socketGone(this.#sock, code); },
    );
    const sock = this.#sock as Socket | null;
    if (!sock) { this.#scheduleAttempt(1006); return; }
    rs.connectTimer = setTimeout(() => {
      if (sock !== this.#sock) return;
      this.#socketGone(sock, 1006);
      sock.close(4000, 'timeout');
    }, rs.opts.connectTimeoutMs);
  }

  /** A reconnection's socket opened: resume, or start afresh. */
  #reopened(sock: Socket): void {
    const rs = this.#rs!;
    if (sock !== this.#sock || this.closed) return;
    if (this.session) {
      rs.state = 'resuming'; // nothing else goes out until the answer (connectTimer bounds it)
      rs.acked = rs.received; // LL_Resume tells the server as much
      sock.send(this.encode('LL_Resume', { token: this.session.token, last_seq: rs.received }));
    } else {
      if (rs.connectTimer) clearTimeout(rs.connectTimer);
      this.#begin(sock);
    }
  }

  #windowLapsed(): void {
    const rs = this.#rs!;
    rs.windowTimer = null;
    if (this.closed || !this.session) return;
    // A resume already on its way is answered by the server (its window started later).
    if (rs.state === 'waiting' || rs.state === 'connecting') this.#loseSession('expired');
  }

  /** The session is gone: forget it, start afresh on the socket if it is open, tell the app. */
  #loseSession(reason: string): void {
    const rs = this.#rs!;
    this.session = null;
    rs.kept = [];
    rs.sent = rs.received = rs.acked = rs.dropAt = 0;
    for (const t of [rs.ackTimer, rs.windowTimer, rs.moveTimer]) if (t) clearTimeout(t);
    rs.ackTimer = rs.windowTimer = rs.moveTimer = null;
    const sock = this.#sock;
    if (sock && this.#open && (rs.state === 'live' || rs.state === 'resuming')) {
      if (rs.connectTimer) clearTimeout(rs.connectTimer);
      rs.attempt = 0;
      this.#begin(sock);
    }
    this.#emit('sessionLost', { reason });
  }

  /** One of the protocol's messages from the server. */
  #protocol(name: string, body: any): void {
    const rs = this.#rs;
    const sock = this.#sock;
    if (!rs || !sock) return;
    switch (name) {
      case 'LL_Session': {
        if (rs.state !== 'starting') return;
        this.session = { token: String(body.token), windowS: Number(body.window_s) };
        rs.state = 'live';
        rs.attempt = 0;
        rs.received = rs.acked = 0;
        const session = { ...this.session };
        if (rs.starting) {
          if (rs.starting.timer) clearTimeout(rs.starting.timer);
          rs.starting.resolve(session);
          rs.starting = null;
        }
        this.#emit('session', session);
        return;
      }
      case 'LL_Resumed': {
        if (rs.state !== 'resuming') return;
        for (const t of [rs.connectTimer, rs.windowTimer]) if (t) clearTimeout(t);
        rs.windowTimer = null;
        const lastSeq = Number(body.last_seq);
        this.session!.token = String(body.token);
        rs.kept = rs.kept.filter((k) => k.seq > lastSeq);
        rs.state = 'live';
        rs.dropAt = 0;
        const attempts = rs.attempt;
        rs.attempt = 0;
        for (const k of rs.kept) sock.send(k.payload);
        this.#emit('resumed', { attempts, lastSeq, resent: rs.kept.length });
        return;
      }
      case 'LL_ResumeRefused':
        if (rs.state === 'resuming' && body.reason === 'retry') {
          this.#socketGone(sock, 1006);
          sock.close(4000, 'retry');
          return;
        }
        if (rs.state === 'resuming' || rs.state === 'live') this.#loseSession(String(body.reason || 'unknown'));
        return;
      case 'LL_Ack': {
        const seq = Number(body.seq);
        if (rs.state === 'live') rs.kept = rs.kept.filter((k) => k.seq > seq);
        return;
      }
      case 'LL_Move': {
        if (rs.state !== 'live' || rs.moveTimer) return;
        const afterMs = Math.max(0, Number(body.after_ms) || 0);
        const next = (this.#at + 1) % this.#urls.length;
        this.#emit('moving', { afterMs, url: this.#urls[next] });
        rs.moveTimer = setTimeout(() => this.#move(sock), afterMs);
        return;
      }
      default: // a client-to-server one: ignored
    }
  }

  /** LL_Move's time has come: acknowledge, leave `sock`, resume on the next address now. */
  #move(sock: Socket): void {
    const rs = this.#rs!;
    rs.moveTimer = null;
    if (sock !== this.#sock || rs.state !== 'live' || this.closed) return;
    this.#ack();
    this.#at = (this.#at + 1) % this.#urls.length;
    this.#socketGone(sock, 4001, 0);
    sock.close(4001, 'moving');
  }

  /** One more numbered message from the server: acknowledge it in time. */
  #counted(): void {
    const rs = this.#rs!;
    rs.received += 1;
    if (rs.received - rs.acked >= rs.opts.ackEvery) this.#ack();
    else if (!rs.ackTimer) rs.ackTimer = setTimeout(() => this.#ack(), rs.opts.ackDelayMs);
  }

  #ack(): void {
    const rs = this.#rs!;
    if (rs.ackTimer) clearTimeout(rs.ackTimer);
    rs.ackTimer = null;
    if (rs.state !== 'live' || rs.received <= rs.acked || !this.#sock) return;
    rs.acked = rs.received;
    this.#sock.send(this.encode('LL_Ack', { seq: rs.received }));
  }

  /** Closed for good: timers off, waiters refused, 'close'. */
  #finish(code: number, reason: string): void {
    this.closed = true;
    const rs = this.#rs;
    if (rs) {
      rs.state = 'closed';
      for (const t of [rs.retryTimer, rs.windowTimer, rs.connectTimer, rs.ackTimer, rs.moveTimer]) if (t) clearTimeout(t);
      if (rs.starting) {
        if (rs.starting.timer) clearTimeout(rs.starting.timer);
        rs.starting.reject(new Error(`connection closed (${code}) before LL_Session`));
        rs.starting = null;
      }
    }
    this.#rejectWaiters(code);
    this.#emit('close', { code, reason });
  }

  #rejectWaiters(code: number): void {
    for (const w of this.#waiters.splice(0)) {
      if (w.timer) clearTimeout(w.timer);
      w.reject(new Error(`connection closed (${code}) before ${w.name}`));
    }
  }

  // ------------------------------------------------------------ receiving

  #receive(data: Uint8Array | string): void {
    const rs = this.#rs;
    let msg;
    try {
      msg = this.codec.decode(data);
    } catch (error) {
      if (rs && rs.state === 'live') this.#counted(); // the server numbered it all the same
      this.#emit('error', { error });
      return;
    }
    if (isProtocolMessage(msg.name)) { this.#protocol(msg.name, msg.body); return; }
    if (rs && rs.state === 'live' && this.codec.delivery(msg.name) !== 'volatile') this.#counted();
    const i = this.#waiters.findIndex((w) => w.name === msg.name);
    if (i >= 0) {
      const [w] = this.#waiters.splice(i, 1);
      if (w.timer) clearTimeout(w.timer);
      w.resolve(msg.body);
    }
    this.#emit(msg.name, msg.body);
    this.#emit('*', msg.body, msg.name);
  }

  #emit(name: string, body: unknown, realName = name): void {
    for (const f of this.#handlers.get(name) || []) {
      try { f(body, realName); } catch (e) { console.error(e); }
    }
  }
}
