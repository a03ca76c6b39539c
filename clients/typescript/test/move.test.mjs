// LL_Move against the real server: two chat gates in a cluster (a real nats-server,
// LONGLINK_NATS_SERVER), a resumable client on the first with the second in its addresses,
// a room streaming from a client on the second. The first gate is stopped (SIGTERM): it tells
// the client LL_Move; the client says 'moving', moves to the second gate after the delay and
// resumes there (the gates hand the session over through NATS), and sees every room message
// exactly once and in order. Skipped without a nats-server, or when the server does not have
// LL_Move in its manifest (a server from before the drain).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';

import { Client, Manifest } from '../dist/index.js';
import { startChat, startNats, until } from './server.mjs';

const cleanup = [];
after(async () => {
  for (const f of cleanup.reverse()) await f();
});

const MESSAGES = 300;

for (const transport of ['ws', 'tcp']) {
  test(`${transport}: a stopping gate moves its client to the next address, nothing lost`, { timeout: 180000 }, async (t) => {
    const nats = await startNats();
    if (!nats) { t.skip('no nats-server (LONGLINK_NATS_SERVER)'); return; }
    cleanup.push(() => nats.stop());
    const cluster = (id) => `[cluster]\nnats_url = "${nats.url}"\nnode_type = "all"\nnode_id = "${id}"\n`;
    const gate = 'resume_buffer = 8192';
    const one = await startChat({ gate, extra: cluster(`one-${transport}`) });
    cleanup.push(() => one.stop());
    const two = await startChat({ gate, extra: cluster(`two-${transport}`) });
    cleanup.push(() => two.stop());
    const manifest = await Manifest.load(`${one.http}/manifest.json`);
    if (!manifest.byName.has('LL_Move')) { t.skip('this server has no LL_Move'); return; }
    const url = (s) => (transport === 'ws' ? s.wsUrl : s.tcpUrl);

    const a = await Client.connect(url(one), { manifest, WebSocket, resume: true, addresses: [url(two)] });
    const b = await Client.connect(url(two), { manifest, WebSocket });
    cleanup.push(() => { a.close(); b.close(); });
    const login = async (c, uid, srv) => {
      const reply = c.next('S2C_UserLogin');
      c.send('C2S_UserLogin', { token: await srv.token(uid), login_plat: 0 });
      assert.equal((await reply).ret, 1);
    };
    await login(a, 9001, one);
    await login(b, 9002, two);
    const room = 31;
    for (const c of [a, b]) {
      const w = c.next('S2C_UpdateWatchRoom');
      c.send('C2S_UpdateWatchRoom', { room_id: room });
      await w;
    }
    const seen = [];
    const events = [];
    a.on('S2C_Message', (m) => { if (m.from_uid === 9002) seen.push(m.text); });
    a.on('moving', (e) => events.push(['moving', e.url]));
    a.on('resumed', () => events.push(['resumed', a.url]));
    a.on('sessionLost', (e) => events.push(['lost', e.reason]));

    // The room streams until the client has resumed on the second gate and MESSAGES more
    // went by (the first gate spreads its moves over drain_spread, 5 s).
    let stopped = null;
    let sent = 0;
    let resumedAt = -1;
    while (sent < 6000 && (resumedAt < 0 || sent < resumedAt + MESSAGES)) {
      for (let j = sent; j < sent + 10; j++) b.send('C2S_Message', { room_id: room, text: `m${j}` });
      sent += 10;
      if (sent === 100) stopped = one.terminate();
      if (resumedAt < 0 && events.some((e) => e[0] === 'resumed')) resumedAt = sent;
      await new Promise((r) => setTimeout(r, 10));
    }
    await until(() => seen.length >= sent, () => `${seen.length} of ${sent}; events ${JSON.stringify(events)}`, 60000);
    await stopped;
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(resumedAt > 0, `resumed while the room streamed: ${JSON.stringify(events)}`);
    assert.deepEqual(events.filter((e) => e[0] !== 'moving').slice(0, 1), [['resumed', url(two)]], JSON.stringify(events));
    assert.deepEqual(events[0], ['moving', url(two)]);
    assert.deepEqual(seen, Array.from({ length: sent }, (_, i) => `m${i}`));
    a.close();
    b.close();
  });
}
