// The client against the real chat server: JSON and protobuf, WebSocket (the `ws` package,
// Node 20 has no global WebSocket) and TCP (node:net); login, rooms, private messages.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';

import { Client, Manifest } from '../dist/index.js';
import { startChat } from './server.mjs';

const servers = {};
before(async () => {
  servers.json = await startChat({ encoding: 'json' });
  servers.protobuf = await startChat({ encoding: 'protobuf' });
});
after(async () => {
  for (const s of Object.values(servers)) await s.stop();
});

let nextUid = 100;

async function login(server, encoding, transport, manifest) {
  const uid = nextUid++;
  const url = transport === 'ws' ? server.wsUrl : server.tcpUrl;
  const client = await Client.connect(url, { encoding, manifest, WebSocket });
  client.send('C2S_UserLogin', { token: await server.token(uid), login_plat: 0 });
  const reply = await client.next('S2C_UserLogin');
  assert.equal(reply.ret, 1, reply.msg);
  assert.equal(reply.uid, uid);
  return { client, uid };
}

for (const encoding of ['json', 'protobuf']) {
  for (const transport of ['ws', 'tcp']) {
    test(`${encoding} over ${transport}: login, a room, a private message`, { timeout: 60000 }, async () => {
      const server = servers[encoding];
      const manifest = await Manifest.load(`${server.http}/manifest.json`);
      const a = await login(server, encoding, transport, manifest);
      const b = await login(server, encoding, transport === 'ws' ? 'tcp' : 'ws', manifest);
      const room = 40 + nextUid;
      a.client.send('C2S_UpdateWatchRoom', { room_id: room });
      assert.deepEqual(await a.client.next('S2C_UpdateWatchRoom'), { room_id: room, online: 1 });
      b.client.send('C2S_UpdateWatchRoom', { room_id: room });
      assert.equal((await b.client.next('S2C_UpdateWatchRoom')).online, 2);

      const seen = a.client.next('S2C_Message');
      const echo = b.client.next('S2C_Message');
      const all = [];
      a.client.on('*', (body, name) => all.push(name));
      b.client.send('C2S_Message', { room_id: room, text: 'hello ✓' });
      const got = await seen;
      assert.equal(got.text, 'hello ✓');
      assert.equal(got.from_uid, b.uid);
      assert.equal(got.room_id, room);
      assert.equal((await echo).text, 'hello ✓', 'the sender gets its room message too');

      const privately = b.client.next('S2C_Message');
      a.client.send('C2S_Message', { to_uid: b.uid, text: 'psst' });
      const priv = await privately;
      assert.deepEqual([priv.from_uid, priv.to_uid, priv.text], [a.uid, b.uid, 'psst']);
      assert.ok(all.includes('S2C_Message'));

      // A request the server refuses: an S2C_Error, the connection stays.
      const refused = a.client.next('S2C_Error');
      a.client.send('C2S_Message', { room_id: 0, to_uid: 0, text: 'nowhere' });
      assert.ok((await refused).code > 0);
      const beat = a.client.next('C2S_UserHeartBeat');
      a.client.send('C2S_UserHeartBeat', { ptime: 1 });
      assert.ok((await beat).ptime > 1_600_000_000);

      const closed = new Promise((resolve) => a.client.on('close', resolve));
      a.client.close();
      assert.equal((await closed).code, 1000);
      b.client.close();
    });
  }
}

test('a client with no manifest speaks JSON; protobuf without one is refused', { timeout: 60000 }, async () => {
  const { client } = await login(servers.json, 'json', 'ws', null);
  client.close();
  await assert.rejects(Client.connect(servers.protobuf.wsUrl, { encoding: 'protobuf', WebSocket }), /manifest/);
});

test('a server that is not there: connect rejects; the next address is tried', { timeout: 60000 }, async () => {
  const dead = 'tcp://127.0.0.1:1';
  await assert.rejects(Client.connect(dead, {}), /cannot connect/);
  const client = await Client.connect(dead, { addresses: [servers.json.tcpUrl] });
  assert.equal(client.url, servers.json.tcpUrl);
  client.close();
});
