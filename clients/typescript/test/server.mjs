// The real chat server for the tests: `longlink-chat` (LONGLINK_CHAT_BIN, or
// $CARGO_TARGET_DIR/debug/longlink-chat, or the repository's target/debug) on 127.0.0.1
// port 0, with a config file; its addresses from its "serving" log line. And a TCP proxy
// that cuts connections on demand.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { PACKAGE } from './helpers.mjs';

function chatBin() {
  const candidates = [
    process.env.LONGLINK_CHAT_BIN,
    process.env.CARGO_TARGET_DIR && path.join(process.env.CARGO_TARGET_DIR, 'debug/longlink-chat'),
    path.join(PACKAGE, '../../target/debug/longlink-chat'),
  ].filter(Boolean);
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`no longlink-chat binary (build it: cargo build -p longlink-chat; or set LONGLINK_CHAT_BIN); looked at ${candidates.join(', ')}`);
  return found;
}

/**
 * Starts a chat server: `encoding` 'json' or 'protobuf', `gate` more TOML lines for [gate],
 * `extra` more TOML sections.
 * Resolves with `{ ws, tcp, wsUrl, tcpUrl, http, token(uid), stop() }`.
 */
export async function startChat({ encoding = 'json', gate = '', extra = '' } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'longlink-ts-chat-'));
  const config = path.join(dir, 'chat.toml');
  writeFileSync(config, `[gate]\ntcp_addr = "127.0.0.1:0"\nws_addr = "127.0.0.1:0"\nencoding = "${encoding}"\n${gate}\n[chat]\ndev_tokens = true\nmax_msgs_per_sec = 0\n[admin]\naddr = ""\n${extra}\n`);
  const child = spawn(chatBin(), ['--config', config], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, RUST_LOG: 'info', NO_COLOR: '1' },
  });
  let stderr = '';
  const serving = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`longlink-chat did not start:\n${stderr}`)), 20000);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d) => {
      stderr += d;
      const m = /serving.*tcp=Some\(([^)]+)\).*ws=Some\(([^)]+)\)|tcp=Some\(([^)]+)\) ws=Some\(([^)]+)\).*serving/.exec(stderr);
      if (m) { clearTimeout(timer); resolve([m[1] || m[3], m[2] || m[4]]); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`longlink-chat exited (${code}):\n${stderr}`)); });
  });
  const [tcp, ws] = await serving;
  const server = {
    tcp,
    ws,
    wsUrl: `ws://${ws}/`,
    tcpUrl: `tcp://${tcp}`,
    http: `http://${ws}`,
    async token(uid) {
      const res = await fetch(`http://${ws}/dev/token?uid=${uid}`);
      if (!res.ok) throw new Error(`/dev/token: ${res.status}`);
      return (await res.text()).trim();
    },
    get log() { return stderr; },
    /** SIGTERM: the gate drains (in a cluster, its resumable clients hear LL_Move). */
    terminate() { child.kill('SIGTERM'); return new Promise((resolve) => { if (child.exitCode !== null) resolve(child.exitCode); else child.once('exit', resolve); }); },
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

/**
 * A TCP proxy to `target` (`host:port`) on 127.0.0.1, port 0. `cut()` resets every
 * connection through it; `down(ms)` also resets every new one for that long.
 */
export async function startProxy(target) {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const pairs = new Set();
  let downUntil = 0;
  let accepted = 0;
  let closing = false;
  const server = net.createServer((client) => {
    accepted += 1;
    client.on('error', () => undefined);
    if (closing || Date.now() < downUntil) { client.resetAndDestroy(); return; }
    const upstream = net.createConnection({ host, port });
    upstream.on('error', () => undefined);
    const pair = { client, upstream };
    pairs.add(pair);
    const end = () => { pairs.delete(pair); client.destroy(); upstream.destroy(); };
    client.on('close', end);
    upstream.on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = `127.0.0.1:${server.address().port}`;
  return {
    addr,
    get accepted() { return accepted; },
    get open() { return pairs.size; },
    /** Resets every connection (a network failure: no close frame, no FIN). */
    cut() {
      for (const { client, upstream } of [...pairs]) { client.resetAndDestroy(); upstream.destroy(); }
    },
    down(ms) { downUntil = Date.now() + ms; this.cut(); },
    /** Stops listening and resets everything (a client still reconnecting is refused). */
    close() { closing = true; this.cut(); return new Promise((resolve) => server.close(resolve)); },
  };
}

/** Waits until `cond()` holds, polling; throws `what` after `ms`. */
export async function until(cond, what, ms = 20000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${typeof what === 'function' ? what() : what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A nats-server (LONGLINK_NATS_SERVER) on a free 127.0.0.1 port, or null when there is none. */
export async function startNats() {
  const bin = process.env.LONGLINK_NATS_SERVER;
  if (!bin || !existsSync(bin)) return null;
  const probe = net.createServer();
  await new Promise((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = probe.address().port;
  await new Promise((resolve) => probe.close(resolve));
  const child = spawn(bin, ['-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  const deadline = Date.now() + 10000;
  for (;;) {
    const up = await new Promise((resolve) => {
      const s = net.createConnection({ host: '127.0.0.1', port }, () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (up) break;
    if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error('nats-server did not start'); }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    stop() { child.kill('SIGTERM'); return new Promise((resolve) => { if (child.exitCode !== null) resolve(); else child.once('exit', resolve); }); },
  };
}
