// wire.js: the wire codec of longlink's browser client, no sockets: the manifest, JSON and
// protobuf payloads, and the session-resume (LL_) messages. An ES module with no dependencies
// and no build step; longlink.js (the connection, `Client`) imports it and re-exports all of
// it, so either module gives these names:
//
//   import { Manifest, encodeProtobuf, decodeProtobuf } from './wire.js';
//   const manifest = await Manifest.load('/manifest.json');
//   const payload = encodeProtobuf(manifest, 'C2S_UserLogin', { token, login_plat: 0 });
//   const { name, body } = decodeProtobuf(manifest, payload);
//
// Wire (one WebSocket message is one payload, binary):
//   json:     {"Name": {...fields}}  (UTF-8)
//   protobuf: | id: u16 big-endian | protobuf body |
// The manifest (`longlink-chat manifest`) gives each message's name, id and fields, so this
// codec encodes and decodes protobuf for any message whose fields are scalars, repeated or
// not. 64-bit integers decode to Number when exact, else to BigInt; either may be sent.

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });

/** Message names, ids and fields, from a longlink manifest document. */
export class Manifest {
  constructor(doc) {
    if (!doc || !Array.isArray(doc.messages)) throw new Error('not a longlink manifest');
    this.doc = doc;
    this.byName = new Map();
    this.byId = new Map();
    for (const m of doc.messages) {
      const fields = (m.fields || []).map((f) => ({ ...f }));
      const entry = { ...m, fields, byNumber: new Map(fields.map((f) => [f.number, f])) };
      this.byName.set(m.name, entry);
      this.byId.set(m.id, entry);
    }
  }

  /** Fetches and parses a manifest (default: `/manifest.json` beside the page). */
  static async load(url = '/manifest.json') {
    const res = await fetch(url);
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
    return new Manifest(await res.json());
  }

  message(name) {
    const m = this.byName.get(name);
    if (!m) throw new Error(`unknown message ${name}`);
    return m;
  }

  /**
   * This manifest with the session-resume messages ([`RESUME_MESSAGES`]) added: itself if it
   * has them already; an error if one of its messages takes their names or ids.
   */
  withResume() {
    const missing = [];
    for (const m of RESUME_MESSAGES) {
      const named = this.byName.get(m.name);
      const numbered = this.byId.get(m.id);
      if (named && named.id === m.id) continue;
      if (named || numbered) {
        const other = named || numbered;
        throw new Error(`message ${other.name} (id ${other.id}) clashes with ${m.name} (id ${m.id})`);
      }
      missing.push(m);
    }
    if (missing.length === 0) return this;
    return new Manifest({ ...this.doc, messages: [...this.doc.messages, ...missing] });
  }
}

// ---------------------------------------------------------------- session resume messages

const tokenSeq = [
  { name: 'token', number: 1, type: 'string', repeated: false },
  { name: 'last_seq', number: 2, type: 'uint64', repeated: false },
];

/**
 * longlink's session-resume protocol (crates/longlink-wire/src/resume.md): JSON names,
 * protobuf ids at the top of the u16 range, fields in field-number order, as manifest entries.
 */
export const RESUME_MESSAGES = Object.freeze([
  { name: 'LL_SessionStart', id: 65530, direction: 'incoming', fields: [] },
  {
    name: 'LL_Session', id: 65531, direction: 'outgoing', fields: [
      { name: 'token', number: 1, type: 'string', repeated: false },
      { name: 'window_s', number: 2, type: 'uint32', repeated: false },
    ],
  },
  { name: 'LL_Resume', id: 65532, direction: 'incoming', fields: tokenSeq },
  { name: 'LL_Resumed', id: 65533, direction: 'outgoing', fields: tokenSeq },
  {
    name: 'LL_ResumeRefused', id: 65534, direction: 'outgoing', fields: [
      { name: 'reason', number: 1, type: 'string', repeated: false },
    ],
  },
  {
    name: 'LL_Ack', id: 65535, direction: 'incoming', fields: [
      { name: 'seq', number: 1, type: 'uint64', repeated: false },
    ],
  },
].map((m) => Object.freeze(m)));

/** Whether `name` is one of the protocol's messages (they all start with `LL_`). */
export function isResumeMessage(name) {
  return typeof name === 'string' && name.startsWith('LL_');
}

// ---------------------------------------------------------------- field defaults

const INT_TYPES = new Set(['int32', 'uint32', 'sint32', 'fixed32', 'sfixed32', 'enum',
  'int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);

function defaultOf(field) {
  if (field.repeated) return [];
  if (INT_TYPES.has(field.type) || field.type === 'float' || field.type === 'double') return 0;
  if (field.type === 'string') return '';
  if (field.type === 'bool') return false;
  if (field.type === 'bytes') return new Uint8Array(0);
  return null;
}

/** `body` with every field of `entry` present (proto3 and serde omit nothing or defaults). */
export function withDefaults(entry, body) {
  const out = {};
  for (const f of entry.fields) out[f.name] = f.name in body ? body[f.name] : defaultOf(f);
  for (const k of Object.keys(body)) if (!(k in out)) out[k] = body[k];
  return out;
}

// ---------------------------------------------------------------- JSON

/** Encodes `{"name": body}`; BigInt values become exact JSON numbers. */
export function encodeJson(name, body) {
  const marked = JSON.stringify({ [name]: body }, (_k, v) =>
    typeof v === 'bigint' ? `\u0000bigint:${v}` : v);
  return textEncoder.encode(marked.replace(/"\\u0000bigint:(-?\d+)"/g, '$1'));
}

/** Decodes a JSON payload into `{name, body}`. */
export function decodeJson(payload, manifest) {
  const text = typeof payload === 'string' ? payload : textDecoder.decode(payload);
  const obj = JSON.parse(text);
  const keys = obj && typeof obj === 'object' && !Array.isArray(obj) ? Object.keys(obj) : [];
  if (keys.length !== 1) throw new Error('a JSON payload has exactly one key');
  const name = keys[0];
  const entry = manifest && manifest.byName.get(name);
  const body = obj[name] || {};
  return { name, body: entry ? withDefaults(entry, body) : body };
}

// ---------------------------------------------------------------- protobuf

const MASK64 = (1n << 64n) - 1n;

class Writer {
  constructor() { this.bytes = []; }
  varint(v) { // v: BigInt, already unsigned 64-bit
    v &= MASK64;
    while (v > 0x7fn) { this.bytes.push(Number(v & 0x7fn) | 0x80); v >>= 7n; }
    this.bytes.push(Number(v));
  }
  tag(number, wire) { this.varint(BigInt(number) << 3n | BigInt(wire)); }
  raw(arr) { for (const b of arr) this.bytes.push(b); }
  fixed(v, size, float) {
    const view = new DataView(new ArrayBuffer(size));
    if (float) (size === 4 ? view.setFloat32(0, v, true) : view.setFloat64(0, v, true));
    else if (size === 4) view.setUint32(0, Number(BigInt.asUintN(32, BigInt(v))), true);
    else view.setBigUint64(0, BigInt.asUintN(64, BigInt(v)), true);
    this.raw(new Uint8Array(view.buffer));
  }
  lenDelimited(arr) { this.varint(BigInt(arr.length)); this.raw(arr); }
  finish() { return Uint8Array.from(this.bytes); }
}

function toBigInt(v, field) {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'boolean') return v ? 1n : 0n;
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  if (typeof v === 'string' && /^-?\d+$/.test(v.trim())) return BigInt(v.trim());
  throw new Error(`${field.name}: ${JSON.stringify(String(v))} is not an integer`);
}

/** The wire type of a scalar, and whether it can be packed. */
function wireOf(type) {
  switch (type) {
    case 'int32': case 'uint32': case 'sint32': case 'int64': case 'uint64': case 'sint64':
    case 'bool': case 'enum':
      return 0;
    case 'fixed64': case 'sfixed64': case 'double':
      return 1;
    case 'string': case 'bytes':
      return 2;
    case 'fixed32': case 'sfixed32': case 'float':
      return 5;
    default:
      return -1;
  }
}

function isDefault(field, v) {
  if (v === undefined || v === null) return true;
  if (field.type === 'string') return v === '';
  if (field.type === 'bytes') return v.length === 0;
  if (field.type === 'bool') return !v;
  if (typeof v === 'bigint') return v === 0n;
  return Number(v) === 0;
}

function writeScalar(w, field, v) {
  switch (field.type) {
    case 'int32': case 'enum': w.varint(BigInt.asUintN(64, BigInt.asIntN(32, toBigInt(v, field)))); break;
    case 'int64': w.varint(BigInt.asUintN(64, toBigInt(v, field))); break;
    case 'uint32': w.varint(BigInt.asUintN(32, toBigInt(v, field))); break;
    case 'uint64': w.varint(BigInt.asUintN(64, toBigInt(v, field))); break;
    case 'sint32': case 'sint64': {
      const bits = field.type === 'sint32' ? 32 : 64;
      const n = BigInt.asIntN(bits, toBigInt(v, field));
      w.varint(BigInt.asUintN(bits, (n << 1n) ^ (n >> BigInt(bits - 1))));
      break;
    }
    case 'bool': w.varint(v ? 1n : 0n); break;
    case 'fixed32': case 'sfixed32': w.fixed(toBigInt(v, field), 4, false); break;
    case 'fixed64': case 'sfixed64': w.fixed(toBigInt(v, field), 8, false); break;
    case 'float': w.fixed(Number(v), 4, true); break;
    case 'double': w.fixed(Number(v), 8, true); break;
    case 'string': w.lenDelimited(textEncoder.encode(String(v))); break;
    case 'bytes': w.lenDelimited(v instanceof Uint8Array ? v : Uint8Array.from(v)); break;
    default: throw new Error(`${field.name}: type ${field.type} is not supported`);
  }
}

/** Encodes `| id: u16 BE | body |` for message `name`. */
export function encodeProtobuf(manifest, name, body) {
  const entry = manifest.message(name);
  const w = new Writer();
  for (const field of entry.fields) {
    const v = body[field.name];
    const wire = wireOf(field.type);
    if (wire < 0) {
      if (isDefault(field, v) || (field.repeated && v.length === 0)) continue;
      throw new Error(`${name}.${field.name}: type ${field.type} is not supported`);
    }
    if (field.repeated) {
      const list = v || [];
      if (list.length === 0) continue;
      if (wire === 2) {
        for (const item of list) { w.tag(field.number, 2); writeScalar(w, field, item); }
      } else { // packed, proto3's default for repeated numbers
        const inner = new Writer();
        for (const item of list) writeScalar(inner, field, item);
        w.tag(field.number, 2);
        w.lenDelimited(inner.finish());
      }
    } else if (!isDefault(field, v)) {
      w.tag(field.number, wire);
      writeScalar(w, field, v);
    }
  }
  const bodyBytes = w.finish();
  const out = new Uint8Array(2 + bodyBytes.length);
  out[0] = entry.id >> 8;
  out[1] = entry.id & 0xff;
  out.set(bodyBytes, 2);
  return out;
}

class Reader {
  constructor(bytes) { this.bytes = bytes; this.pos = 0; }
  done() { return this.pos >= this.bytes.length; }
  varint() {
    let v = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (this.pos >= this.bytes.length) throw new Error('truncated varint');
      const b = this.bytes[this.pos++];
      v |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return v & MASK64;
    }
    throw new Error('varint too long');
  }
  take(n) {
    if (n > this.bytes.length - this.pos) throw new Error('truncated field');
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  view(n) { const b = this.take(n); return new DataView(b.buffer, b.byteOffset, n); }
  skip(wire) {
    switch (wire) {
      case 0: this.varint(); break;
      case 1: this.take(8); break;
      case 2: this.take(Number(this.varint())); break;
      case 5: this.take(4); break;
      default: throw new Error(`wire type ${wire} is not supported`);
    }
  }
}

const SAFE = BigInt(Number.MAX_SAFE_INTEGER);
function exact(n) { return n <= SAFE && n >= -SAFE ? Number(n) : n; }

function readScalar(r, field, wire) {
  switch (field.type) {
    case 'int32': case 'enum': return Number(BigInt.asIntN(32, r.varint()));
    case 'uint32': return Number(BigInt.asUintN(32, r.varint()));
    case 'int64': return exact(BigInt.asIntN(64, r.varint()));
    case 'uint64': return exact(r.varint());
    case 'sint32': case 'sint64': {
      const u = r.varint();
      const n = (u >> 1n) ^ -(u & 1n);
      return field.type === 'sint32' ? Number(BigInt.asIntN(32, n)) : exact(BigInt.asIntN(64, n));
    }
    case 'bool': return r.varint() !== 0n;
    case 'fixed32': return r.view(4).getUint32(0, true);
    case 'sfixed32': return r.view(4).getInt32(0, true);
    case 'fixed64': return exact(r.view(8).getBigUint64(0, true));
    case 'sfixed64': return exact(r.view(8).getBigInt64(0, true));
    case 'float': return r.view(4).getFloat32(0, true);
    case 'double': return r.view(8).getFloat64(0, true);
    case 'string': return textDecoder.decode(r.take(Number(r.varint())));
    case 'bytes': return r.take(Number(r.varint())).slice();
    default: r.skip(wire); return undefined;
  }
}

/** Decodes `| id: u16 BE | body |` into `{name, body}`. */
export function decodeProtobuf(manifest, payload) {
  const bytes = payload instanceof Uint8Array ? payload : new Uint8Array(payload);
  if (bytes.length < 2) throw new Error('a protobuf payload has at least 2 bytes');
  const id = (bytes[0] << 8) | bytes[1];
  const entry = manifest.byId.get(id);
  if (!entry) throw new Error(`unknown message id ${id}`);
  const body = {};
  for (const f of entry.fields) body[f.name] = defaultOf(f);
  const r = new Reader(bytes.subarray(2));
  while (!r.done()) {
    const tag = r.varint();
    const number = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    const field = entry.byNumber.get(number);
    if (!field || wireOf(field.type) < 0) { r.skip(wire); continue; }
    if (field.repeated && wire === 2 && wireOf(field.type) !== 2) { // packed
      const inner = new Reader(r.take(Number(r.varint())));
      while (!inner.done()) body[field.name].push(readScalar(inner, field, wireOf(field.type)));
    } else if (wire !== wireOf(field.type)) {
      throw new Error(`${entry.name}.${field.name}: wire type ${wire}, expected ${wireOf(field.type)}`);
    } else if (field.repeated) {
      body[field.name].push(readScalar(r, field, wire));
    } else {
      body[field.name] = readScalar(r, field, wire);
    }
  }
  return { name: entry.name, body };
}
