// The sockets under a client: a WebSocket (the platform's, or one passed in) for `ws://` and
// `wss://`, and TCP through Node's `node:net` for `tcp://host:port`, imported only when a
// TCP address is used, so that browsers and Cocos Creator never load it. Each reports
// open, message and close exactly once each way, and never throws from an event: a failed
// connect or a reset is a close (code 1006), never an unhandled error.

/** What a socket tells its client. */
export interface SocketEvents {
  open(): void;
  message(data: Uint8Array | string): void;
  /** Once, whatever ended it (1006: not a clean close). */
  close(code: number, reason: string): void;
}

/** One connection's socket. */
export interface Socket {
  /** Writes one payload (dropped when the socket is not open). */
  send(payload: Uint8Array): void;
  /** Ends the socket: `code` 1000 is the goodbye for good; another code, a drop. */
  close(code: number, reason?: string): void;
}

/** A WebSocket constructor: the browser's, Node 22's, or the `ws` package's. */
export interface WebSocketConstructor {
  new (url: string): WebSocketLike;
}

/** The part of the WebSocket API the client uses. */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (ev: any) => void): void;
}

/** TCP framing: leaf's length prefix (`| len | payload |`). */
export interface TcpOptions {
  /** Bytes of the length field: 1, 2 (default) or 4. */
  lenMsgLen?: 1 | 2 | 4;
  /** A little-endian length field (default big-endian). */
  littleEndian?: boolean;
  /** The largest payload either way (default 8192, the chat's `max_msg_len`; leaf's is 4096). */
  maxMsgLen?: number;
}

/** Opens a socket to `url` (`ws://`, `wss://` or `tcp://`). */
export function openSocket(url: string, events: SocketEvents, ws: WebSocketConstructor | undefined, tcp: TcpOptions): Socket {
  if (url.startsWith('tcp://')) return openTcp(url, events, tcp);
  if (/^wss?:\/\//.test(url)) return openWebSocket(url, events, ws);
  throw new Error(`${url}: the address is ws://, wss:// or tcp://host:port`);
}

function once(events: SocketEvents): SocketEvents {
  let opened = false;
  let closed = false;
  return {
    open: () => { if (!opened && !closed) { opened = true; events.open(); } },
    message: (d) => { if (!closed) events.message(d); },
    close: (code, reason) => { if (!closed) { closed = true; events.close(code, reason); } },
  };
}

function openWebSocket(url: string, events: SocketEvents, Ws: WebSocketConstructor | undefined): Socket {
  const ev = once(events);
  const Ctor = Ws || (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (!Ctor) throw new Error('no WebSocket here: pass one ({ WebSocket } from the ws package in Node 20)');
  const ws = new Ctor(url);
  ws.binaryType = 'arraybuffer';
  ws.addEventListener('open', () => ev.open());
  ws.addEventListener('message', (e: { data: ArrayBuffer | Uint8Array | string }) => {
    const d = e.data;
    ev.message(typeof d === 'string' ? d : d instanceof Uint8Array ? d : new Uint8Array(d));
  });
  // An error is always followed by a close; listening keeps it from being unhandled.
  ws.addEventListener('error', () => undefined);
  ws.addEventListener('close', (e: { code: number; reason: string }) => ev.close(e.code || 1006, String(e.reason || '')));
  return {
    send(payload) {
      if (ws.readyState !== 1) return;
      try { ws.send(payload); } catch { /* closing: the close event follows */ }
    },
    close(code, reason = '') {
      try { ws.close(code, reason); } catch { /* already closed, or a code this WebSocket refuses */ try { ws.close(); } catch { /* closed */ } }
    },
  };
}

/** The part of Node's `net.Socket` used here. */
interface NetSocket {
  on(event: string, f: (...args: any[]) => void): void;
  write(data: Uint8Array): boolean;
  end(): void;
  destroy(): void;
  setNoDelay(on: boolean): void;
}

function openTcp(url: string, events: SocketEvents, opts: TcpOptions): Socket {
  const ev = once(events);
  const { hostname, port } = new URL(url.replace(/^tcp:/, 'http:'));
  const host = hostname.replace(/^\[|\]$/g, '');
  const lenSize = opts.lenMsgLen ?? 2;
  if (lenSize !== 1 && lenSize !== 2 && lenSize !== 4) throw new Error(`lenMsgLen ${String(lenSize)}: 1, 2 or 4`);
  const little = opts.littleEndian ?? false;
  const max = Math.min(opts.maxMsgLen ?? 8192, lenSize === 4 ? 0xffffffff : 256 ** lenSize - 1);
  let sock: NetSocket | null = null;
  let pending: 'open' | 'close' | 'end' = 'open';
  let buf = new Uint8Array(0);

  const onData = (chunk: Uint8Array) => {
    const joined = new Uint8Array(buf.length + chunk.length);
    joined.set(buf);
    joined.set(chunk, buf.length);
    let at = 0;
    while (joined.length - at >= lenSize) {
      const view = new DataView(joined.buffer, joined.byteOffset + at, lenSize);
      const n = lenSize === 1 ? view.getUint8(0) : lenSize === 2 ? view.getUint16(0, little) : view.getUint32(0, little);
      if (n < 1 || n > max) { // a protocol error: the stream cannot be read further
        sock?.destroy();
        ev.close(1002, `a frame of ${n} bytes`);
        return;
      }
      if (joined.length - at - lenSize < n) break;
      ev.message(joined.slice(at + lenSize, at + lenSize + n));
      at += lenSize + n;
    }
    buf = joined.slice(at);
  };

  const specifier = 'node:net'; // a variable, so that bundlers leave it alone
  import(/* webpackIgnore: true */ /* @vite-ignore */ specifier).then(
    (net: { createConnection(o: { host: string; port: number }): NetSocket }) => {
      if (pending !== 'open') { ev.close(1006, 'closed before connecting'); return; }
      const s = net.createConnection({ host, port: Number(port) });
      sock = s;
      s.setNoDelay(true);
      s.on('connect', () => ev.open());
      s.on('data', onData);
      s.on('error', () => undefined); // 'close' follows
      s.on('close', () => ev.close(pending === 'end' ? 1000 : 1006, ''));
    },
    (e: unknown) => ev.close(1006, `no TCP here (node:net: ${String(e)})`),
  );

  return {
    send(payload) {
      if (!sock || pending !== 'open') return;
      if (payload.length < 1 || payload.length > max) throw new Error(`a payload of ${payload.length} bytes does not fit (1 to ${max})`);
      const frame = new Uint8Array(lenSize + payload.length);
      const view = new DataView(frame.buffer);
      if (lenSize === 1) view.setUint8(0, payload.length);
      else if (lenSize === 2) view.setUint16(0, payload.length, little);
      else view.setUint32(0, payload.length, little);
      frame.set(payload, lenSize);
      sock.write(frame);
    },
    close(code) {
      if (pending !== 'open') return;
      // TCP has no goodbye: both are an end of the stream; a drop does not wait for the flush.
      pending = code === 1000 ? 'end' : 'close';
      if (!sock) return;
      if (code === 1000) sock.end();
      else sock.destroy();
    },
  };
}
