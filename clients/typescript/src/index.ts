// longlink-client: a client for longlink (and leaf) servers. WebSocket (browsers, Cocos
// Creator, Node with a WebSocket passed in) and TCP (Node, `tcp://host:port`), JSON and
// protobuf, session resume that loses nothing, LL_Move, and typed messages from
// `longlink-codegen`.
//
//   import { Client, Manifest } from 'longlink-client';
//   const manifest = await Manifest.load('http://127.0.0.1:3653/manifest.json');
//   const client = await Client.connect('ws://127.0.0.1:3653/', { encoding: 'protobuf', manifest, resume: true });
//   client.on('S2C_Message', (body) => console.log(body.from_uid, body.text));
//   client.send('C2S_UserLogin', { token, login_plat: 0 });
//   const reply = await client.next('S2C_UserLogin');

export { Client, defaultUrl, type AnyMessages } from './client.js';
export { Codec, type Decoded, type Encoding, type GeneratedCodec, type GeneratedCodecs } from './codec.js';
export {
  Manifest, PROTOCOL_MESSAGES, isProtocolMessage,
  type Delivery, type FieldDoc, type ManifestDoc, type MessageDoc, type MessageEntry, type TypeDoc,
} from './manifest.js';
export type { Socket, SocketEvents, TcpOptions, WebSocketConstructor, WebSocketLike } from './transport.js';
export * from './types.js';
