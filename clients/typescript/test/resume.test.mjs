// Session resume against the real chat server, through a proxy that resets connections:
// while a room streams 2,000 messages, the resumable client's connection is cut at random
// points; it must receive each message exactly once and in order, and the private messages
// it sends around the cuts must each reach their receiver exactly once and in order. Then:
// 'sessionLost' once the window has passed, a fresh session after it; and a reconnection
// whose handshake is reset is one more attempt, never an uncaught error.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';

import { Client, Manifest } from '../dist/index.js';
import { startChat, startProxy, until } from './server.mjs';

const cleanup = [];
after(async () => {
  for (const f of cleanup.reverse()) await f();
});

const ROOM_MESSAGES = 2000;
const PRIVATE_MESSAGES = 200;
let nextUid = 500;

async function loggedIn(client, server) {
  const uid = nextUid++;
  const reply = client.next('S2C_UserLogin');
  client.send('C2S_UserLogin', { token: await server.token(uid), login_plat: 0 });
  assert.equal((await reply).ret, 1);
  return uid;
}

async function watch(client, room) {
  const watching = client.next('S2C_UpdateWatchRoom');
  client.send('C2S_UpdateWatchRoom', { room_id: room });
  await watching;
}

for (const [encoding, transport] of [['json', 'ws'], ['protobuf', 'tcp'], ['protobuf', 'ws'], ['json', 'tcp']]) {
  test(`${encoding} over ${transport}: cut at random points, every message once and in order, both ways`, { timeout: 180000 }, async () => {
    const server = await startChat({ encoding, gate: 'resume_buffer = 8192\nmax_msg_rate = 0' });
    cleanup.push(() => server.stop());
    const proxy = await startProxy(transport === 'ws' ? server.ws : server.tcp);
    cleanup.push(() => proxy.close());
    const manifest = await Manifest.load(`${server.http}/manifest.json`);
    const url = transport === 'ws' ? `ws://${proxy.addr}/` : `tcp://${proxy.addr}`;
    const direct = transport === 'ws' ? server.wsUrl : server.tcpUrl;

    const a = await Client.connect(url, { encoding, manifest, WebSocket, resume: { maxDelayMs: 300 } });
    const b = await Client.connect(direct, { encoding, manifest, WebSocket });
    cleanup.push(() => { a.close(); b.close(); });
    const uidA = await loggedIn(a, server);
    const uidB = await loggedIn(b, server);
    const room = 7;
    await watch(a, room);
    await watch(b, room);

    const roomSeen = [];
    const privSeen = [];
    let resumes = 0;
    a.on('S2C_Message', (m) => { if (m.from_uid === uidB) roomSeen.push(m.text); });
    b.on('S2C_Message', (m) => { if (m.from_uid === uidA) privSeen.push(m.text); });
    a.on('resumed', () => { resumes += 1; });
    const lost = [];
    a.on('sessionLost', (e) => lost.push(e.reason));

    // B streams the room in batches; A sends private messages to B meanwhile; the proxy cuts A.
    let cuts = 0;
    const cutter = setInterval(() => {
      if (proxy.open > 0 && Math.random() < 0.5) { proxy.cut(); cuts += 1; }
    }, 40);
    cleanup.push(() => clearInterval(cutter));
    for (let i = 0; i < ROOM_MESSAGES; i += 20) {
      for (let j = i; j < i + 20; j++) b.send('C2S_Message', { room_id: room, text: `m${j}` });
      const k = i / 10;
      if (k < PRIVATE_MESSAGES) {
        a.send('C2S_Message', { to_uid: uidB, text: `p${k}` });
        a.send('C2S_Message', { to_uid: uidB, text: `p${k + 1}` });
      }
      await new Promise((r) => setTimeout(r, 8));
    }
    await until(() => roomSeen.length >= ROOM_MESSAGES && privSeen.length >= PRIVATE_MESSAGES,
      () => `A has ${roomSeen.length} room messages, B ${privSeen.length} private ones`, 60000);
    clearInterval(cutter);
    await new Promise((r) => setTimeout(r, 300)); // anything doubled would show up by now

    assert.deepEqual(lost, [], 'the session was never lost');
    assert.ok(cuts >= 3 && resumes >= 3, `cut ${cuts} times, resumed ${resumes} times`);
    assert.deepEqual(roomSeen, Array.from({ length: ROOM_MESSAGES }, (_, i) => `m${i}`));
    assert.deepEqual(privSeen, Array.from({ length: PRIVATE_MESSAGES }, (_, i) => `p${i}`));
    a.close();
    b.close();
  });
}

test('sessionLost after the window, then a fresh session; failed handshakes are just attempts', { timeout: 180000 }, async () => {
  const server = await startChat({ encoding: 'json', gate: 'resume_window = 1' });
  cleanup.push(() => server.stop());
  const proxy = await startProxy(server.ws);
  cleanup.push(() => proxy.close());
  const a = await Client.connect(`ws://${proxy.addr}/`, { WebSocket, resume: { initialDelayMs: 50, maxDelayMs: 200 } });
  cleanup.push(() => a.close());
  assert.equal(a.session.windowS, 1);
  await loggedIn(a, server);
  const events = [];
  a.on('reconnecting', (e) => events.push(`reconnecting ${e.attempt}`));
  a.on('sessionLost', (e) => events.push(`lost ${e.reason}`));
  a.on('session', () => events.push('session'));
  a.on('resumed', () => events.push('resumed'));

  // Down for 2 s: every attempt is reset during its handshake, and the window (1 s) passes.
  const attemptsBefore = proxy.accepted;
  proxy.down(2000);
  await until(() => events.includes('session'), () => `events: ${events.join(', ')}`, 15000);
  assert.ok(proxy.accepted - attemptsBefore >= 3, 'several attempts were reset');
  assert.ok(events.includes('lost expired') || events.includes('lost unknown'), events.join(', '));
  assert.ok(!events.includes('resumed'));
  assert.notEqual(a.state, 'closed');
  // Logged out with the session: log in again on the fresh one, and talk.
  await loggedIn(a, server);
  const beat = a.next('C2S_UserHeartBeat');
  a.send('C2S_UserHeartBeat', { ptime: 1 });
  await beat;
  a.close();
});
