// The client's side of the LL_ protocol against a scripted server (the `ws` package's
// WebSocketServer on 127.0.0.1, port 0), for what the chat server cannot be made to do on
// cue: LL_Move (reconnect to the next address after `after_ms`, and resume there), and
// delivery classes (a message the manifest marks "volatile" is not numbered: not counted,
// not acknowledged, so LL_Ack and LL_Resume carry only the reliable ones).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket, { WebSocketServer } from 'ws';

import { Client, Manifest } from '../dist/index.js';
import { until } from './server.mjs';

const manifest = new Manifest({
  format: 'longlink-manifest/2',
  messages: [
    { name: 'S2C_Tick', id: 1, direction: 'outgoing', fields: [{ name: 'n', number: 1, type: 'uint32', repeated: false }] },
    { name: 'S2C_Typing', id: 2, direction: 'outgoing', delivery: 'volatile', fields: [{ name: 'uid', number: 1, type: 'uint64', repeated: false }] },
    { name: 'S2C_Board', id: 3, direction: 'outgoing', delivery: 'latest', fields: [] },
    { name: 'C2S_Say', id: 4, direction: 'incoming', fields: [{ name: 'text', number: 1, type: 'string', repeated: false }] },
  ],
});

/** A scripted server: every message it receives, by connection; `send(json)` to the latest. */
async function fakeServer() {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((resolve) => wss.on('listening', resolve));
  const s = {
    url: `ws://127.0.0.1:${wss.address().port}/`,
    conns: [],
    got: [],
    send(obj) { s.conns.at(-1).send(JSON.stringify(obj)); },
    clients: [],
    close: () => new Promise((resolve) => {
      for (const c of s.clients) c.close();
      wss.close(resolve);
      for (const c of wss.clients) c.terminate();
    }),
  };
  wss.on('connection', (ws) => {
    s.conns.push(ws);
    ws.on('message', (data) => s.got.push(JSON.parse(String(data))));
    ws.on('error', () => undefined);
  });
  return s;
}

test('volatile messages are not counted: LL_Ack and LL_Resume number the reliable ones only', { timeout: 60000 }, async () => {
  const server = await fakeServer();
  try {
    const client = await Client.connect(server.url, { manifest, WebSocket, resume: false });
    server.clients.push(client);
    const started = client.startSession({ ackEvery: 32, ackDelayMs: 60000 });
    await until(() => server.got.length === 1, 'LL_SessionStart');
    assert.deepEqual(server.got[0], { LL_SessionStart: {} });
    server.send({ LL_Session: { token: 't1', window_s: 30 } });
    await started;
    const seen = [];
    client.on('*', (_body, name) => seen.push(name));
    for (let i = 1; i <= 40; i++) {
      server.send({ S2C_Typing: { uid: i } });
      server.send({ S2C_Tick: { n: i } });
      if (i % 10 === 0) server.send({ S2C_Board: {} });
    }
    await until(() => seen.length === 84, `${seen.length} messages`);
    // 40 ticks + 4 boards are numbered (44); 40 typing messages are not. One LL_Ack at 32.
    await until(() => server.got.some((m) => m.LL_Ack), 'an LL_Ack');
    await new Promise((r) => setTimeout(r, 100)); // a wrong second one would be here by now
    const acks = server.got.filter((m) => m.LL_Ack).map((m) => m.LL_Ack.seq);
    assert.deepEqual(acks, [32], JSON.stringify(server.got));
    server.conns[0].terminate(); // a drop: the client resumes with what it numbered
    await until(() => server.got.some((m) => m.LL_Resume), 'LL_Resume');
    assert.deepEqual(server.got.find((m) => m.LL_Resume).LL_Resume, { token: 't1', last_seq: 44 });
    client.close();
  } finally {
    await server.close();
  }
});

test('LL_Move: after after_ms the client moves to the next address and resumes there', { timeout: 60000 }, async () => {
  const first = await fakeServer();
  const second = await fakeServer();
  try {
    const client = await Client.connect(first.url, { manifest, WebSocket, addresses: [second.url] });
    first.clients.push(client);
    const started = client.startSession();
    await until(() => first.got.length === 1, 'LL_SessionStart');
    first.send({ LL_Session: { token: 't1', window_s: 30 } });
    await started;
    const events = [];
    client.on('moving', (e) => events.push(['moving', e.afterMs, e.url]));
    client.on('resumed', (e) => events.push(['resumed', client.url, e.lastSeq, e.resent]));
    client.on('sessionLost', (e) => events.push(['lost', e.reason]));
    for (let n = 1; n <= 3; n++) first.send({ S2C_Tick: { n } });
    client.send('C2S_Say', { text: 'before the move' });
    first.send({ LL_Move: { after_ms: 300 } });
    await until(() => events.length === 1, 'moving');
    assert.deepEqual(events[0], ['moving', 300, second.url]);
    // Still on the first server until after_ms: it goes on working there.
    first.send({ S2C_Tick: { n: 4 } });
    client.send('C2S_Say', { text: 'while moving' });
    await until(() => first.got.filter((m) => m.C2S_Say).length === 2, 'both says on the first server');
    assert.equal(second.conns.length, 0);
    await until(() => second.got.length === 1, 'LL_Resume on the second server', 5000);
    // Acknowledged before leaving, then LL_Resume first and alone on the new address.
    assert.deepEqual(first.got.filter((m) => m.LL_Ack).at(-1), { LL_Ack: { seq: 4 } });
    assert.deepEqual(second.got[0], { LL_Resume: { token: 't1', last_seq: 4 } });
    second.send({ LL_Resumed: { token: 't2', last_seq: 1 } }); // the server handled the first say only
    await until(() => events.length === 2, 'resumed');
    assert.deepEqual(events[1], ['resumed', second.url, 1, 1]);
    await until(() => second.got.length === 2, 'the say resent');
    assert.deepEqual(second.got[1], { C2S_Say: { text: 'while moving' } });
    assert.equal(client.session.token, 't2');
    assert.equal(client.url, second.url);
    client.close();
  } finally {
    await first.close();
    await second.close();
  }
});

test('LL_Move then a drop before after_ms: the client goes straight to the next address', { timeout: 60000 }, async () => {
  const first = await fakeServer();
  const second = await fakeServer();
  try {
    const client = await Client.connect(first.url, { manifest, WebSocket, addresses: [second.url] });
    first.clients.push(client);
    const started = client.startSession();
    await until(() => first.got.length === 1, 'LL_SessionStart');
    first.send({ LL_Session: { token: 't1', window_s: 30 } });
    await started;
    first.send({ S2C_Tick: { n: 1 } });
    first.send({ LL_Move: { after_ms: 60000 } });
    await new Promise((r) => setTimeout(r, 50));
    const connectsBefore = first.conns.length;
    first.conns[0].terminate();
    await until(() => second.got.length === 1, 'LL_Resume on the second server', 5000);
    assert.deepEqual(second.got[0], { LL_Resume: { token: 't1', last_seq: 1 } });
    assert.equal(first.conns.length, connectsBefore, 'no attempt on the server that asked us to move');
    client.close();
  } finally {
    await first.close();
    await second.close();
  }
});

test('without resume, the LL_ messages never reach the application and none is sent', { timeout: 60000 }, async () => {
  const server = await fakeServer();
  try {
    const client = await Client.connect(server.url, { manifest, WebSocket });
    server.clients.push(client);
    const seen = [];
    client.on('*', (_b, name) => seen.push(name));
    server.send({ LL_Move: { after_ms: 0 } });
    server.send({ S2C_Tick: { n: 1 } });
    await until(() => seen.length === 1, 'the tick');
    assert.deepEqual(seen, ['S2C_Tick']);
    client.send('C2S_Say', { text: 'x' });
    await until(() => server.got.length === 1, 'the say');
    assert.deepEqual(server.got, [{ C2S_Say: { text: 'x' } }]);
    client.close();
  } finally {
    await server.close();
  }
});

test('browsers and Cocos Creator load no node: module: TCP imports node:net only when used', { timeout: 60000 }, async () => {
  const { readdirSync, readFileSync } = await import('node:fs');
  const dist = new URL('../dist/', import.meta.url);
  for (const file of readdirSync(dist).filter((f) => f.endsWith('.js'))) {
    const text = readFileSync(new URL(file, dist), 'utf8');
    assert.doesNotMatch(text, /^import .* from ['"]node:/m, file);
    assert.doesNotMatch(text, /require\(/, file);
  }
});
