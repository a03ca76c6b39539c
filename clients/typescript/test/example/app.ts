// An application using the generated types (test/codegen.test.mjs copies it beside a
// messages.ts generated from the chat's manifest, then runs `tsc --noEmit` on it). The lines
// marked @ts-expect-error must not compile.

import { Client, Manifest } from 'longlink-client';
import { codecs, type MessageMap, type S2C_Message } from './messages.js';

export async function chat(url: string): Promise<void> {
  const manifest: Manifest = await Manifest.load('http://127.0.0.1:3653/manifest.json');
  const client = await Client.connect<MessageMap>(url, { encoding: 'protobuf', manifest, codecs, resume: true });
  client.send('C2S_UserLogin', { token: 'a.b.c', login_plat: 0 });
  const reply = await client.next('S2C_UserLogin');
  const uid: number | bigint = reply.uid;
  client.on('S2C_Message', (m: S2C_Message) => console.log(m.from_uid, m.text.toUpperCase()));
  client.on('*', (_body, name) => console.log(name));
  client.on('resumed', ({ attempts }) => console.log(attempts + 1));
  client.send('C2S_Message', { room_id: uid, text: 'hi' });
  // @ts-expect-error: no such message
  client.send('C2S_Nope', {});
  // @ts-expect-error: text is a string
  client.send('C2S_Message', { text: 42 });
  // @ts-expect-error: S2C_UserLogin has no field text
  client.on('S2C_UserLogin', (m) => m.text);
  client.close();
}
