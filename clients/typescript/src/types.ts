// The client's options and events.

import type { GeneratedCodecs, Encoding } from './codec.js';
import type { Manifest } from './manifest.js';
import type { TcpOptions, WebSocketConstructor } from './transport.js';

/** Session resume's timings (`resume: true` takes these defaults). */
export interface ResumeOptions {
  /** The first reconnection waits up to this (full jitter), in ms ... */
  initialDelayMs?: number;
  /** ... doubling up to this. */
  maxDelayMs?: number;
  /** An attempt that has not opened (and been answered) by then fails. */
  connectTimeoutMs?: number;
  /** `startSession()` fails without `LL_Session` by then. */
  startTimeoutMs?: number;
  /** `LL_Ack` after this many application messages ... */
  ackEvery?: number;
  /** ... or this long after the first one not acknowledged. */
  ackDelayMs?: number;
}

/** The defaults of [`ResumeOptions`]. */
export const RESUME_DEFAULTS: Readonly<Required<ResumeOptions>> = Object.freeze({
  initialDelayMs: 100,
  maxDelayMs: 3000,
  connectTimeoutMs: 5000,
  startTimeoutMs: 5000,
  ackEvery: 32,
  ackDelayMs: 200,
});

/** `Client.connect`'s options. */
export interface ClientOptions extends TcpOptions {
  /** `'json'` (default) or `'protobuf'` (needs `manifest` or `codecs`). */
  encoding?: Encoding;
  /** The server's manifest (`Manifest.load(urlOrPath)` or `Manifest.parse(json)`). */
  manifest?: Manifest | null;
  /** Generated codecs (`codecs` of `longlink-codegen`'s messages.ts): no run-time reflection. */
  codecs?: GeneratedCodecs;
  /** Make the session resumable (`true`, or timings). */
  resume?: boolean | ResumeOptions;
  /** The WebSocket constructor, where there is no global one (Node 20: the `ws` package's). */
  WebSocket?: WebSocketConstructor;
  /** More addresses to reconnect to (and to move to on `LL_Move`), after `url`, in turn. */
  addresses?: string[];
}

/** `'session'`: the session is resumable (it started, or started afresh after a loss). */
export interface SessionEvent { token: string; windowS: number }
/** `'reconnecting'`: the socket dropped; attempt `attempt` comes after `delayMs`, to `url`. */
export interface ReconnectingEvent { attempt: number; delayMs: number; code: number; url: string }
/** `'resumed'`: back (on `client.url`), nothing lost; `resent` of ours went again. */
export interface ResumedEvent { attempts: number; lastSeq: number; resent: number }
/** `'sessionLost'`: the session is gone (`'unknown'`, `'expired'`, `'replaced'`, `'overflow'`): log in again. */
export interface SessionLostEvent { reason: string }
/** `'moving'`: the server asked this client to move (`LL_Move`): it reconnects to `url` after `afterMs`. */
export interface MovingEvent { afterMs: number; url: string }
/** `'close'`: closed for good. */
export interface CloseEvent { code: number; reason: string }
/** `'error'`: a payload that did not decode. */
export interface ErrorEvent { error: unknown }

/** The client's own events. */
export interface ClientEvents {
  session: SessionEvent;
  reconnecting: ReconnectingEvent;
  resumed: ResumedEvent;
  sessionLost: SessionLostEvent;
  moving: MovingEvent;
  close: CloseEvent;
  error: ErrorEvent;
}
