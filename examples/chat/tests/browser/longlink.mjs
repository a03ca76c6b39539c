// The names the node tests of this folder use, from the demo page's client: the npm package
// longlink-client (clients/typescript) as build.rs compiled it for the page
// (LONGLINK_CLIENT_DIR, which tests/browser.rs sets), or else the package's own build
// (`npm run build` in clients/typescript). The codec functions are the package's `Codec`.

import path from 'node:path';
import { pathToFileURL } from 'node:url';

const dir = process.env.LONGLINK_CLIENT_DIR
  || path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../../../clients/typescript/dist');
const lib = await import(pathToFileURL(path.join(dir, 'index.js')).href);

export const { Client, Codec } = lib;

/** The six session-resume messages (ids 65530 to 65535), as manifest entries. */
export const RESUME_MESSAGES = Object.freeze(lib.PROTOCOL_MESSAGES.filter((m) => m.id >= 65530));

/** The package's Manifest, with `withResume()`: the six session-resume messages added (itself if it has them). */
export class Manifest extends lib.Manifest {
  withResume() {
    const missing = [];
    for (const m of RESUME_MESSAGES) {
      const named = this.byName.get(m.name);
      const numbered = this.byId.get(m.id);
      if (named && named.id === m.id) continue;
      const other = named || numbered;
      if (other) throw new Error(`message ${other.name} (id ${other.id}) clashes with ${m.name} (id ${m.id})`);
      missing.push(m);
    }
    if (missing.length === 0) return this;
    return new Manifest({ ...this.doc, messages: [...this.doc.messages, ...missing] });
  }
}

export const encodeJson = (name, body) => new lib.Codec('json', null).encode(name, body);
export const decodeJson = (payload, manifest) => new lib.Codec('json', manifest || null).decode(payload);
export const encodeProtobuf = (manifest, name, body) => new lib.Codec('protobuf', manifest).encode(name, body);
export const decodeProtobuf = (manifest, payload) => new lib.Codec('protobuf', manifest).decode(new Uint8Array(payload));
