// Unit tests of the demo page client's session resume (longlink.mjs), in node (no browser, no server): a fake
// WebSocket plays the server, node's mock timers play the clock. Run by tests/browser.rs:
//
//   node --test resume.mjs
//
// Checks the LL_ messages against golden bytes in both encodings, and the client's rules
// (longlink-wire's resume module): LL_SessionStart first; the server's application messages
// numbered from LL_Session and acknowledged every 32 or after 200 ms; what the client sends
// kept until the server's LL_Ack; on a drop, reconnection with full-jitter backoff (100 ms
// doubling to 3 s) and LL_Resume{token, last_seq} first and alone; on LL_Resumed the kept
// messages after last_seq resent in order; on LL_ResumeRefused (also unsolicited) or once
// window_s has passed, 'sessionLost' and a fresh session; without `resume`, leaf's traffic.

import { test, mock, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  Client, Manifest, RESUME_MESSAGES, encodeJson, decodeJson, encodeProtobuf, decodeProtobuf,
} from './longlink.mjs';

// The pinned manifest lists the LL_ messages; `chat` is it without them (a server's from
// before session resume, or another app's), which the client completes by itself.
const pinned = new Manifest(JSON.parse(readFileSync(new URL('../manifest.json', import.meta.url), 'utf8')));
const chat = new Manifest({
  ...pinned.doc,
  messages: pinned.doc.messages.filter((m) => !m.name.startsWith('LL_')),
});
const withLl = chat.withResume();
const hex = (bytes) => Buffer.from(bytes).toString('hex');
const text = (bytes) => new TextDecoder().decode(bytes);
const flush = () => new Promise((resolve) => setImmediate(resolve));

/** A browser WebSocket as far as the client uses it; the test is the server. */
class FakeWs {
  static all = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    this.listeners = new Map();
    FakeWs.all.push(this);
  }
  addEventListener(type, f, opts = {}) {
    if (!this.listeners.has(type)) this.listeners.set(type, []);
    this.listeners.get(type).push({ f, once: !!opts.once });
  }
  fire(type, ev = {}) {
    const ls = this.listeners.get(type) || [];
    this.listeners.set(type, ls.filter((l) => !l.once));
    for (const l of ls) l.f(ev);
  }
  send(data) {
    if (this.readyState === 0) throw new Error('InvalidStateError: still connecting');
    if (this.readyState === 1) this.sent.push(Uint8Array.from(data)); // else discarded, as browsers do
  }
  close(code = 1000) {
    if (this.readyState >= 2) return;
    this.readyState = 3;
    this.fire('close', { code, reason: '' });
  }
  // The server's side.
  open() { this.readyState = 1; this.fire('open'); }
  fail() { this.readyState = 3; this.fire('error'); this.fire('close', { code: 1006, reason: '' }); }
  drop() { this.readyState = 3; this.fire('close', { code: 1006, reason: '' }); }
}

/** One of the three ways the client can encode. */
const MODES = [
  { label: 'json', encoding: 'json', manifest: chat },
  { label: 'json without a manifest', encoding: 'json', manifest: null },
  { label: 'protobuf', encoding: 'protobuf', manifest: chat },
  { label: 'protobuf with the server\'s manifest', encoding: 'protobuf', manifest: pinned },
];

function codec(mode) {
  const encode = (name, body) => (mode.encoding === 'json'
    ? encodeJson(name, body)
    : encodeProtobuf(withLl, name, body));
  const decode = (bytes) => (mode.encoding === 'json'
    ? decodeJson(bytes, mode.manifest ? withLl : null)
    : decodeProtobuf(withLl, bytes));
  return { encode, decode };
}

/** The server's end of one fake socket, in `mode`'s encoding. */
function server(ws, mode) {
  const { encode, decode } = codec(mode);
  let read = 0;
  return {
    ws,
    deliver(name, body = {}) { ws.fire('message', { data: encode(name, body).slice().buffer }); },
    /** Every message the client sent on this socket, decoded. */
    all() { return ws.sent.map(decode); },
    /** The messages sent since the last call. */
    fresh() { const out = ws.sent.slice(read).map(decode); read = ws.sent.length; return out; },
  };
}

const last = () => server.bind(null, FakeWs.all[FakeWs.all.length - 1]);

/** A client of `mode` with a started session (token t1, `windowS`), and what it emitted. */
async function started(mode, { windowS = 30, resume = true } = {}) {
  const events = [];
  const pending = Client.connect('ws://server/', {
    encoding: mode.encoding, manifest: mode.manifest, resume, WebSocket: FakeWs,
  });
  const s = last()(mode);
  s.ws.open();
  await flush();
  assert.deepEqual(s.fresh(), [{ name: 'LL_SessionStart', body: {} }], 'LL_SessionStart first');
  s.deliver('LL_Session', { token: 't1', window_s: windowS });
  const client = await pending;
  for (const name of ['*', 'session', 'reconnecting', 'resumed', 'sessionLost', 'close', 'error']) {
    client.on(name, (body, real) => events.push(name === '*' ? ['msg', real, body.text] : [name, body]));
  }
  assert.deepEqual(client.session, { token: 't1', windowS });
  return { client, s, events };
}

const appMessages = (events) => events.filter((e) => e[0] === 'msg');
const named = (events, name) => events.filter((e) => e[0] === name).map((e) => e[1]);
const say = (s, n) => s.deliver('S2C_Message', { room_id: 1, from_uid: 2, text: `m${n}` });

beforeEach(() => {
  FakeWs.all = [];
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
});
afterEach(() => {
  mock.timers.reset();
  mock.restoreAll();
});

test('the LL_ messages have their golden bytes in both encodings', () => {
  const golden = [
    ['LL_SessionStart', {}, 'fffa', '{"LL_SessionStart":{}}'],
    ['LL_Session', { token: 't', window_s: 30 }, 'fffb0a0174101e', '{"LL_Session":{"token":"t","window_s":30}}'],
    ['LL_Resume', { token: 'abc', last_seq: 7 }, 'fffc0a03616263' + '1007', '{"LL_Resume":{"token":"abc","last_seq":7}}'],
    ['LL_Resumed', { token: 'abc', last_seq: 7 }, 'fffd0a036162631007', '{"LL_Resumed":{"token":"abc","last_seq":7}}'],
    ['LL_ResumeRefused', { reason: 'expired' }, 'fffe0a07' + hex(Buffer.from('expired')), '{"LL_ResumeRefused":{"reason":"expired"}}'],
    ['LL_Ack', { seq: 12 }, 'ffff080c', '{"LL_Ack":{"seq":12}}'],
  ];
  for (const [name, body, pb, json] of golden) {
    assert.equal(hex(encodeProtobuf(withLl, name, body)), pb, `${name} protobuf`);
    assert.deepEqual(decodeProtobuf(withLl, Buffer.from(pb, 'hex')), { name, body }, `${name} from protobuf`);
    assert.equal(text(encodeJson(name, body)), json, `${name} JSON`);
    assert.deepEqual(decodeJson(json, withLl), { name, body }, `${name} from JSON`);
  }
  // A u64 beyond 2^53 stays exact.
  const big = 2n ** 64n - 1n;
  assert.equal(hex(encodeProtobuf(withLl, 'LL_Ack', { seq: big })), 'ffff08ffffffffffffffffff01');
  assert.equal(decodeProtobuf(withLl, Buffer.from('ffff08ffffffffffffffffff01', 'hex')).body.seq, big);
  assert.deepEqual(RESUME_MESSAGES.map((m) => m.id), [65530, 65531, 65532, 65533, 65534, 65535]);
});

test('withResume adds the six messages once and refuses a clash', () => {
  assert.equal(withLl.withResume(), withLl, 'already there: the same manifest');
  assert.equal(pinned.withResume(), pinned, 'the server\'s manifest has them already');
  for (const m of RESUME_MESSAGES) {
    const { name, id, direction, fields } = pinned.message(m.name);
    assert.deepEqual({ name, id, direction, fields }, m, `the server's ${m.name} is the client's`);
  }
  assert.equal(chat.byName.has('LL_Ack'), false, 'the original is untouched');
  assert.equal(withLl.byId.get(65535).name, 'LL_Ack');
  assert.equal(withLl.message('C2S_UserLogin').id, 1);
  const clash = new Manifest({ messages: [{ name: 'Mine', id: 65535, fields: [] }] });
  assert.throws(() => clash.withResume(), /Mine \(id 65535\) clashes with LL_Ack/);
});

test('a client without resume sends exactly what it did before, and a drop is a close', async () => {
  for (const mode of MODES) {
    FakeWs.all = [];
    const pending = Client.connect('ws://server/', { encoding: mode.encoding, manifest: mode.manifest, WebSocket: FakeWs });
    const ws = FakeWs.all[0];
    ws.open();
    const client = await pending;
    const closes = [];
    client.on('close', (e) => closes.push(e.code));
    client.send('C2S_UserLogin', { token: 'a.b.c', login_plat: 0 });
    ws.fire('message', { data: codec(mode).encode('S2C_Message', { text: 'x' }).slice().buffer });
    const body = { token: 'a.b.c', login_plat: 0 };
    const expected = mode.encoding === 'json' ? encodeJson('C2S_UserLogin', body) : encodeProtobuf(chat, 'C2S_UserLogin', body);
    assert.deepEqual(ws.sent.map(hex), [hex(expected)], `${mode.label}: only the login, byte for byte`);
    assert.equal(client.session, null);
    ws.drop();
    mock.timers.tick(60_000);
    assert.deepEqual(closes, [1006], `${mode.label}: close once`);
    assert.equal(FakeWs.all.length, 1, `${mode.label}: no reconnection`);
    assert.equal(client.state, 'closed');
  }
});

for (const mode of MODES) {
  test(`${mode.label}: numbering, acks, kept messages, and a resume that loses and doubles nothing`, async () => {
    const { client, s, events } = await started(mode);
    const { encode } = codec(mode);

    // Acknowledged after 32 messages at once, then 200 ms after the first one not acknowledged.
    for (let n = 1; n <= 31; n += 1) say(s, n);
    assert.deepEqual(s.fresh(), [], 'no LL_Ack before 32 messages or 200 ms');
    say(s, 32);
    assert.deepEqual(s.fresh(), [{ name: 'LL_Ack', body: { seq: 32 } }]);
    assert.equal(hex(s.ws.sent.at(-1)), hex(encode('LL_Ack', { seq: 32 })), 'LL_Ack bytes');
    for (let n = 33; n <= 35; n += 1) say(s, n);
    mock.timers.tick(199);
    assert.deepEqual(s.fresh(), []);
    mock.timers.tick(1);
    assert.deepEqual(s.fresh(), [{ name: 'LL_Ack', body: { seq: 35 } }]);
    mock.timers.tick(1000);
    assert.deepEqual(s.fresh(), [], 'nothing new: no LL_Ack');

    // What the client sends is kept until the server acknowledges it.
    for (const t of ['c1', 'c2', 'c3']) client.send('C2S_Message', { room_id: 1, text: t });
    assert.deepEqual(s.fresh().map((m) => m.body.text), ['c1', 'c2', 'c3']);
    assert.equal(client.unacked, 3);
    s.deliver('LL_Ack', { seq: 1 });
    assert.equal(client.unacked, 2);

    // The socket drops: reconnecting, with a jittered wait below 100 ms, then 200 ms.
    s.ws.drop();
    assert.equal(client.state, 'reconnecting');
    client.send('C2S_Message', { room_id: 1, text: 'c4' }); // kept: no socket
    let [r] = named(events, 'reconnecting');
    assert.equal(r.attempt, 1);
    assert.equal(r.code, 1006);
    assert.ok(r.delayMs >= 0 && r.delayMs < 100, `first delay ${r.delayMs}`);
    mock.timers.tick(r.delayMs);
    assert.equal(FakeWs.all.length, 2, 'a new socket');
    FakeWs.all[1].fail(); // refused: the network is still down
    r = named(events, 'reconnecting')[1];
    assert.equal(r.attempt, 2);
    assert.ok(r.delayMs < 200, `second delay ${r.delayMs}`);
    mock.timers.tick(r.delayMs);
    const s2 = last()(mode);
    assert.equal(FakeWs.all.length, 3);
    s2.ws.open();
    client.send('C2S_Message', { room_id: 1, text: 'c5' }); // kept: not before the answer
    assert.deepEqual(s2.fresh(), [{ name: 'LL_Resume', body: { token: 't1', last_seq: 35 } }], 'LL_Resume first and alone');
    assert.equal(client.state, 'reconnecting');

    // Resumed: the server had handled 2 of ours; 3, 4, 5 go again, in order; the replay follows.
    s2.deliver('LL_Resumed', { token: 't2', last_seq: 2 });
    assert.deepEqual(s2.fresh().map((m) => [m.name, m.body.text]),
      [['C2S_Message', 'c3'], ['C2S_Message', 'c4'], ['C2S_Message', 'c5']]);
    assert.deepEqual(named(events, 'resumed'), [{ attempts: 2, lastSeq: 2, resent: 3 }]);
    assert.equal(client.session.token, 't2', 'the new token');
    assert.equal(client.state, 'open');
    for (let n = 36; n <= 40; n += 1) say(s2, n);
    mock.timers.tick(200);
    assert.deepEqual(s2.fresh(), [{ name: 'LL_Ack', body: { seq: 40 } }], 'numbering goes on');
    s2.deliver('LL_Ack', { seq: 5 });
    assert.equal(client.unacked, 0);

    // A second drop resumes with the new token and the latest count.
    s2.ws.drop();
    mock.timers.tick(3000);
    const s3 = last()(mode);
    s3.ws.open();
    assert.deepEqual(s3.fresh(), [{ name: 'LL_Resume', body: { token: 't2', last_seq: 40 } }]);
    s3.deliver('LL_Resumed', { token: 't3', last_seq: 5 });
    assert.deepEqual(s3.fresh(), [], 'nothing to resend');
    say(s3, 41);

    const texts = appMessages(events).map((e) => e[2]);
    assert.deepEqual(texts, Array.from({ length: 41 }, (_, i) => `m${i + 1}`), 'every message once, in order');
    assert.ok(appMessages(events).every((e) => e[1] === 'S2C_Message'), 'no LL_ message reaches the app');
    assert.deepEqual(named(events, 'sessionLost'), []);
    assert.deepEqual(named(events, 'close'), []);
    client.close();
    assert.deepEqual(named(events, 'close'), [{ code: 1000, reason: '' }]);
  });

  test(`${mode.label}: a refused resume is a lost session and a fresh one on the same socket`, async () => {
    const { client, s, events } = await started(mode);
    for (let n = 1; n <= 3; n += 1) say(s, n);
    client.send('C2S_Message', { room_id: 1, text: 'old' });
    s.ws.drop();
    mock.timers.tick(100);
    const s2 = last()(mode);
    s2.ws.open();
    assert.deepEqual(s2.fresh(), [{ name: 'LL_Resume', body: { token: 't1', last_seq: 3 } }]);
    s2.deliver('LL_ResumeRefused', { reason: 'unknown' });
    assert.deepEqual(named(events, 'sessionLost'), [{ reason: 'unknown' }]);
    assert.equal(client.session, null);
    assert.equal(client.unacked, 0, 'what the old session kept is gone');
    assert.deepEqual(s2.fresh(), [{ name: 'LL_SessionStart', body: {} }], 'a fresh session at once');
    client.send('C2S_UserLogin', { token: 'tok' }); // goes out: the server reads in order
    assert.deepEqual(s2.fresh().map((m) => m.name), ['C2S_UserLogin']);
    s2.deliver('LL_Session', { token: 'n1', window_s: 30 });
    assert.deepEqual(named(events, 'session'), [{ token: 'n1', windowS: 30 }]);
    for (let n = 1; n <= 32; n += 1) say(s2, 100 + n);
    assert.deepEqual(s2.fresh(), [{ name: 'LL_Ack', body: { seq: 32 } }], 'counting starts again');
    // And the new session resumes with its own token.
    s2.ws.drop();
    mock.timers.tick(100);
    const s3 = last()(mode);
    s3.ws.open();
    assert.deepEqual(s3.fresh(), [{ name: 'LL_Resume', body: { token: 'n1', last_seq: 32 } }]);
  });

  test(`${mode.label}: a "retry" refusal keeps the session: a new socket after the backoff resumes it`, async () => {
    const { client, s, events } = await started(mode);
    for (let n = 1; n <= 3; n += 1) say(s, n);
    client.send('C2S_Message', { room_id: 1, text: 'kept' });
    s.ws.drop();
    mock.timers.tick(100);
    const s2 = last()(mode);
    s2.ws.open();
    assert.deepEqual(s2.fresh(), [{ name: 'LL_Resume', body: { token: 't1', last_seq: 3 } }]);
    s2.deliver('LL_ResumeRefused', { reason: 'retry' });
    assert.deepEqual(named(events, 'sessionLost'), [], 'not a loss');
    assert.deepEqual(client.session, { token: 't1', windowS: 30 });
    assert.deepEqual(s2.fresh(), [], 'nothing more on the refused socket');
    assert.equal(s2.ws.readyState, 3, 'the refused socket is closed');
    assert.equal(named(events, 'reconnecting').length, 2, 'a second attempt, after its backoff');
    mock.timers.tick(3000);
    const s3 = last()(mode);
    assert.notEqual(s3.ws, s2.ws);
    s3.ws.open();
    assert.deepEqual(s3.fresh(), [{ name: 'LL_Resume', body: { token: 't1', last_seq: 3 } }]);
    s3.deliver('LL_Resumed', { token: 't2', last_seq: 0 });
    assert.deepEqual(s3.fresh().map((m) => [m.name, m.body.text]), [['C2S_Message', 'kept']]);
    assert.equal(named(events, 'resumed').length, 1);
    assert.deepEqual(named(events, 'sessionLost'), []);
  });

  test(`${mode.label}: an unsolicited LL_ResumeRefused ends the live session`, async () => {
    const { client, s, events } = await started(mode);
    client.send('C2S_Message', { room_id: 1, text: 'x' });
    s.fresh();
    s.deliver('LL_ResumeRefused', { reason: 'overflow' });
    assert.deepEqual(named(events, 'sessionLost'), [{ reason: 'overflow' }]);
    assert.deepEqual(s.fresh(), [{ name: 'LL_SessionStart', body: {} }]);
    assert.equal(client.state, 'open');
    assert.equal(client.unacked, 0);
    assert.equal(FakeWs.all.length, 1, 'the same socket');
  });

  test(`${mode.label}: once window_s has passed offline the session is lost; the next socket starts afresh`, async () => {
    const { client, s, events } = await started(mode, { windowS: 2 });
    say(s, 1);
    s.ws.drop();
    // Every attempt fails for 2 s.
    let failed = 0;
    while (Date.now() < 1_000_000 + 2000) {
      mock.timers.tick(50);
      for (const ws of FakeWs.all.slice(1)) if (ws.readyState === 0) { ws.fail(); failed += 1; }
      if (Date.now() < 1_000_000 + 1999) assert.deepEqual(named(events, 'sessionLost'), []);
    }
    assert.ok(failed >= 3, `${failed} attempts failed`);
    assert.deepEqual(named(events, 'sessionLost'), [{ reason: 'expired' }]);
    // The app logs in again while still offline: kept for the fresh session.
    client.send('C2S_UserLogin', { token: 'tok' });
    mock.timers.tick(3000);
    const s2 = last()(mode);
    s2.ws.open();
    assert.deepEqual(s2.fresh().map((m) => m.name), ['LL_SessionStart', 'C2S_UserLogin'], 'no LL_Resume');
    s2.deliver('LL_Session', { token: 'n1', window_s: 2 });
    assert.equal(client.state, 'open');
    assert.deepEqual(named(events, 'sessionLost'), [{ reason: 'expired' }], 'told once');
  });
}

test('the backoff doubles from 100 ms to 3 s, with full jitter', async () => {
  const mode = MODES[0];
  const { s, events } = await started(mode);
  mock.method(Math, 'random', () => 0.9999);
  s.ws.drop();
  for (let i = 0; i < 7; i += 1) {
    const r = named(events, 'reconnecting').at(-1);
    mock.timers.tick(r.delayMs);
    FakeWs.all.at(-1).fail();
  }
  assert.deepEqual(named(events, 'reconnecting').map((r) => r.delayMs), [99, 199, 399, 799, 1599, 2999, 2999, 2999]);
  mock.method(Math, 'random', () => 0);
  mock.timers.tick(2999);
  FakeWs.all.at(-1).fail();
  assert.equal(named(events, 'reconnecting').at(-1).delayMs, 0);
});

test('an attempt that neither opens nor is answered in time is given up', async () => {
  const mode = MODES[2];
  const { client, s, events } = await started(mode);
  s.ws.drop();
  mock.timers.tick(100);
  assert.equal(FakeWs.all.length, 2);
  mock.timers.tick(5000); // never opens
  assert.equal(FakeWs.all[1].readyState, 3, 'closed');
  assert.equal(named(events, 'reconnecting').length, 2);
  mock.timers.tick(200);
  const s3 = last()(mode);
  s3.ws.open(); // opens, but LL_Resume is not answered
  mock.timers.tick(5000);
  assert.equal(named(events, 'reconnecting').length, 3);
  mock.timers.tick(400);
  last()(mode).ws.open();
  last()(mode).deliver('LL_Resumed', { token: 't2', last_seq: 0 });
  assert.equal(client.state, 'open');
  assert.equal(named(events, 'resumed')[0].attempts, 3);
});

test('close() while reconnecting ends it: one close, no more sockets, waiters refused', async () => {
  const { client, s, events } = await started(MODES[0]);
  const waiting = client.next('S2C_Message', 60_000);
  s.ws.drop();
  client.close();
  await assert.rejects(waiting, /closed/);
  mock.timers.tick(60_000);
  assert.equal(FakeWs.all.length, 1);
  assert.deepEqual(named(events, 'close'), [{ code: 1000, reason: '' }]);
  assert.throws(() => client.send('C2S_Message', {}), /closed/);
});

test('a drop before LL_Session (a server without resume closes) fails connect()', async () => {
  const pending = Client.connect('ws://server/', { encoding: 'json', resume: true, WebSocket: FakeWs });
  FakeWs.all[0].open();
  await flush();
  FakeWs.all[0].drop();
  await assert.rejects(pending, { name: 'ResumeUnavailableError', message: /closed \(1006\) before LL_Session/ });
  mock.timers.tick(60_000);
  assert.equal(FakeWs.all.length, 1);
});

test('dropConnection drops the socket as a network failure would, and the client resumes', async () => {
  const mode = MODES[0];
  const { client, s, events } = await started(mode);
  say(s, 1);
  client.dropConnection({ offlineMs: 1000 });
  assert.equal(s.ws.readyState, 3);
  say(s, 2); // arrives on the dropped socket: not read
  mock.timers.tick(999);
  assert.equal(FakeWs.all.length, 1, 'offline: no socket opened');
  assert.ok(named(events, 'reconnecting').length >= 2);
  mock.timers.tick(3000);
  const s2 = last()(mode);
  s2.ws.open();
  assert.deepEqual(s2.fresh(), [{ name: 'LL_Resume', body: { token: 't1', last_seq: 1 } }]);
  s2.deliver('LL_Resumed', { token: 't2', last_seq: 0 });
  say(s2, 2); // the replay
  assert.deepEqual(appMessages(events).map((e) => e[2]), ['m1', 'm2']);
});
