// The manifest-driven codec: protobuf bodies and JSON bodies of any message the manifest
// describes (scalars, nested messages, repeated fields, enums, maps, oneof), read from the
// manifest at run time. Generated code (`longlink-codegen`) does the same without the
// lookups.
//
// Body shapes (the server's JSON, serde over prost's types): a nested message is an object
// or null; an enum its number; a map an object keyed by the key's decimal text; bytes a
// Uint8Array (an array of numbers in JSON); 64-bit integers a number when exact, else a
// bigint; a `oneof` is one key, the oneof's name, holding `{Variant: value}` (the field's
// name in UpperCamelCase, as prost names the variant) or null; a proto3 `optional` field is
// its value or null.

import type { FieldDoc, Manifest, MessageEntry } from './manifest.js';
import { LEN, Reader, Writer, toBytes, wireOf } from './runtime.js';

type Body = Record<string, unknown>;

/** prost's variant name of a oneof field: `text_value` -> `TextValue`. */
export function variantName(field: string): string {
  return field
    .split('_')
    .flatMap((w) => w.split(/(?<=[a-z0-9])(?=[A-Z])/))
    .filter((w) => w.length > 0)
    .map((w) => w[0].toUpperCase() + w.slice(1).toLowerCase())
    .join('');
}

/** The value a field has when it is not on the wire. */
export function defaultOf(field: FieldDoc): unknown {
  if (field.repeated) return [];
  if (field.type === 'map') return {};
  if (field.optional || field.type === 'message') return null;
  return scalarDefault(field.type);
}

function scalarDefault(type: string): unknown {
  switch (type) {
    case 'string': return '';
    case 'bool': return false;
    case 'bytes': return new Uint8Array(0);
    case 'message': return null;
    default: return 0;
  }
}

function isDefault(type: string, v: unknown): boolean {
  if (v === undefined || v === null) return true;
  switch (type) {
    case 'string': return v === '';
    case 'bytes': return (v as ArrayLike<number>).length === 0;
    case 'bool': return !v;
    default: return typeof v === 'bigint' ? v === 0n : Number(v) === 0 && !Object.is(Number(v), -0);
  }
}

function writeScalar(w: Writer, type: string, v: unknown, what: string): void {
  const m = (w as unknown as Record<string, (v: unknown, what: string) => void>)[type];
  if (typeof m !== 'function' || wireOf(type) < 0 || type === 'message' || type === 'map') {
    throw new Error(`${what}: type ${type} is not supported`);
  }
  m.call(w, v, what);
}

function readScalar(r: Reader, type: string): unknown {
  return (r as unknown as Record<string, () => unknown>)[type].call(r);
}

/** Writes `body` as message `entry`'s protobuf body. */
export function encodeBody(manifest: Manifest, entry: MessageEntry, body: Body, w: Writer): void {
  for (const field of entry.fields) {
    const what = `${entry.name}.${field.name}`;
    if (field.oneof && !field.optional) {
      const chosen = body[field.oneof] as Body | null | undefined;
      const key = variantName(field.name);
      if (chosen && typeof chosen === 'object' && key in chosen) writeOne(manifest, w, field, chosen[key], what);
      continue;
    }
    const v = body[field.name];
    if (field.type === 'map') {
      for (const [k, val] of Object.entries((v || {}) as Body)) {
        w.tag(field.number, LEN);
        w.nested((e) => writeMapEntry(manifest, e, field, k, val, what));
      }
    } else if (field.repeated) {
      const list = (v || []) as unknown[];
      if (list.length === 0) continue;
      if (wireOf(field.type) === LEN) {
        for (const item of list) writeOne(manifest, w, field, item, what);
      } else {
        w.tag(field.number, LEN);
        w.nested((p) => { for (const item of list) writeScalar(p, field.type, item, what); });
      }
    } else if (field.optional ? v !== null && v !== undefined : field.type === 'message' ? v != null : !isDefault(field.type, v)) {
      writeOne(manifest, w, field, v, what);
    }
  }
}

/** One value of `field`, with its key. */
function writeOne(manifest: Manifest, w: Writer, field: FieldDoc, v: unknown, what: string): void {
  w.tag(field.number, wireOf(field.type));
  if (field.type === 'message') {
    w.nested((n) => encodeBody(manifest, manifest.type(field.type_name!), (v || {}) as Body, n));
  } else {
    writeScalar(w, field.type, v, what);
  }
}

/** A map entry: key 1 and value 2, each left out when it is its default (as prost does). */
function writeMapEntry(manifest: Manifest, w: Writer, field: FieldDoc, k: string, v: unknown, what: string): void {
  const keyType = field.key_type!;
  const key = keyType === 'bool' ? k === 'true' : keyType === 'string' ? k : k;
  if (!isDefault(keyType, keyType === 'string' || keyType === 'bool' ? key : BigInt(k))) {
    w.tag(1, wireOf(keyType));
    writeScalar(w, keyType, key, what);
  }
  const valueType = field.value_type!;
  if (valueType === 'message') {
    const inner = new Writer();
    encodeBody(manifest, manifest.type(field.type_name!), (v || {}) as Body, inner);
    const bytes = inner.finish();
    if (bytes.length > 0) { w.tag(2, LEN); w.bytes(bytes); }
  } else if (!isDefault(valueType, v)) {
    w.tag(2, wireOf(valueType));
    writeScalar(w, valueType, v, what);
  }
}

/** Reads message `entry`'s protobuf body: every field present, defaults for those not on the wire. */
export function decodeBody(manifest: Manifest, entry: MessageEntry, r: Reader): Body {
  const body: Body = {};
  for (const field of entry.fields) {
    if (field.oneof && !field.optional) body[field.oneof] = null;
    else body[field.name] = defaultOf(field);
  }
  while (!r.done()) {
    const [number, wire] = r.tag();
    const field = entry.byNumber.get(number);
    const expected = field ? wireOf(field.type) : -1;
    if (!field || expected < 0) { r.skip(wire); continue; }
    const what = `${entry.name}.${field.name}`;
    if (field.type === 'map') {
      if (wire !== LEN) throw new Error(`${what}: wire type ${wire}, expected ${LEN}`);
      const [k, v] = readMapEntry(manifest, field, r.sub());
      (body[field.name] as Body)[k] = v;
    } else if (field.repeated && wire === LEN && expected !== LEN) { // packed
      const p = r.sub();
      while (!p.done()) (body[field.name] as unknown[]).push(readScalar(p, field.type));
    } else if (wire !== expected) {
      throw new Error(`${what}: wire type ${wire}, expected ${expected}`);
    } else {
      const v = field.type === 'message' ? decodeBody(manifest, manifest.type(field.type_name!), r.sub()) : readScalar(r, field.type);
      if (field.repeated) (body[field.name] as unknown[]).push(v);
      else if (field.oneof && !field.optional) body[field.oneof] = { [variantName(field.name)]: v };
      else body[field.name] = v;
    }
  }
  return body;
}

function readMapEntry(manifest: Manifest, field: FieldDoc, r: Reader): [string, unknown] {
  const keyType = field.key_type!;
  const valueType = field.value_type!;
  let key: unknown = scalarDefault(keyType);
  let value: unknown = valueType === 'message' ? null : scalarDefault(valueType);
  while (!r.done()) {
    const [number, wire] = r.tag();
    if (number === 1 && wire === wireOf(keyType)) key = readScalar(r, keyType);
    else if (number === 2 && valueType === 'message' && wire === LEN) value = decodeBody(manifest, manifest.type(field.type_name!), r.sub());
    else if (number === 2 && wire === wireOf(valueType)) value = readScalar(r, valueType);
    else r.skip(wire);
  }
  if (value === null) value = decodeBody(manifest, manifest.type(field.type_name!), new Reader(new Uint8Array(0)));
  return [String(key), value];
}

/**
 * A JSON body as the protobuf decoder would give it: every field present (defaults for the
 * missing), bytes as Uint8Array, nested messages likewise.
 */
export function normalizeJson(manifest: Manifest, entry: MessageEntry, json: Body): Body {
  const body: Body = {};
  for (const field of entry.fields) {
    const key = field.oneof && !field.optional ? field.oneof : field.name;
    const v = json[key];
    if (field.oneof && !field.optional) {
      if (body[key]) continue; // filled by another variant
      const variant = variantName(field.name);
      body[key] = v && typeof v === 'object' && variant in (v as Body)
        ? { [variant]: normalizeValue(manifest, field, field.type, (v as Body)[variant]) }
        : (body[key] ?? null);
      continue;
    }
    if (v === undefined || (v === null && !field.optional && field.type !== 'message')) { body[key] = defaultOf(field); continue; }
    if (v === null) { body[key] = null; continue; }
    if (field.type === 'map') {
      const out: Body = {};
      for (const [k, val] of Object.entries(v as Body)) out[k] = normalizeValue(manifest, field, field.value_type!, val);
      body[key] = out;
    } else if (field.repeated) {
      body[key] = (v as unknown[]).map((item) => normalizeValue(manifest, field, field.type, item));
    } else {
      body[key] = normalizeValue(manifest, field, field.type, v);
    }
  }
  for (const k of Object.keys(json)) if (!(k in body)) body[k] = json[k];
  return body;
}

function normalizeValue(manifest: Manifest, field: FieldDoc, type: string, v: unknown): unknown {
  if (type === 'bytes') return toBytes(v);
  if (type === 'message') return v === null ? null : normalizeJson(manifest, manifest.type(field.type_name!), v as Body);
  return v;
}
