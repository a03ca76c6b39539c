// The protobuf and JSON codecs of the demo page's client (longlink.mjs), from the command line, so that
// tests/browser.rs can check them against prost and serde (no browser needed):
//
//   node codec.mjs MANIFEST decode HEX          -> {"Name":{...}} (64-bit integers exact)
//   node codec.mjs MANIFEST encode NAME JSON    -> HEX of | id | body | (JSON numbers may be
//                                                  strings, for exact 64-bit values)
//   node codec.mjs MANIFEST json NAME JSON      -> the JSON payload the client would send
//
// The manifest is taken with the session-resume messages (LL_*, ids 65530..65535) added, as
// a resumable client has it.

import { readFileSync } from 'node:fs';
import { Manifest, encodeProtobuf, decodeProtobuf, encodeJson } from './longlink.mjs';

const [file, op, ...rest] = process.argv.slice(2);
const manifest = new Manifest(JSON.parse(readFileSync(file, 'utf8'))).withResume();
const exact = (obj) => new TextDecoder().decode(encodeJson('x', obj)).slice(5, -1);

switch (op) {
  case 'decode': {
    const { name, body } = decodeProtobuf(manifest, Buffer.from(rest[0], 'hex'));
    console.log(exact({ [name]: body }));
    break;
  }
  case 'encode':
    console.log(Buffer.from(encodeProtobuf(manifest, rest[0], JSON.parse(rest[1]))).toString('hex'));
    break;
  case 'json': {
    const body = JSON.parse(rest[1]);
    for (const f of manifest.message(rest[0]).fields) {
      if (typeof body[f.name] === 'string' && f.type !== 'string') body[f.name] = BigInt(body[f.name]);
    }
    console.log(new TextDecoder().decode(encodeJson(rest[0], body)));
    break;
  }
  default:
    console.error('usage: node codec.mjs MANIFEST decode HEX | encode NAME JSON | json NAME JSON');
    process.exit(2);
}
