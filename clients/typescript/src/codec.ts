// Payloads: one message in, bytes out, and back. JSON `{"Name": {...}}` (UTF-8) or protobuf
// `| id: u16 big-endian | body |`, for every message of the manifest (read at run time) or
// of generated code (`longlink-codegen`'s `codecs`), which takes precedence.

import { Manifest, PROTOCOL_MANIFEST, type Delivery } from './manifest.js';
import { decodeBody, encodeBody, normalizeJson } from './reflect.js';
import { Reader, Writer, fromUtf8, parseJson, stringifyJson, utf8 } from './runtime.js';

/** The wire encoding both ends agree on. */
export type Encoding = 'json' | 'protobuf';

/** One message's generated codec (what `longlink-codegen` writes into `codecs`). */
export interface GeneratedCodec<T = any> {
  readonly id: number;
  readonly delivery?: Delivery;
  /** The protobuf body (no id). */
  encode(value: Partial<T>): Uint8Array;
  decode(body: Uint8Array): T;
  /** The value as JSON gives it (bigint and bytes left for the JSON writer). */
  toJson(value: Partial<T>): unknown;
  /** The value from its parsed JSON body. */
  fromJson(json: unknown): T;
}

/** Generated codecs by message name. */
export type GeneratedCodecs = Readonly<Record<string, GeneratedCodec>>;

/** A decoded message. */
export interface Decoded {
  name: string;
  body: any;
}

/** Encodes and decodes payloads in one encoding. */
export class Codec {
  readonly manifest: Manifest;
  private readonly byId = new Map<number, [string, GeneratedCodec]>();

  constructor(
    readonly encoding: Encoding,
    manifest: Manifest | null,
    private readonly generated: GeneratedCodecs = {},
  ) {
    if (encoding !== 'json' && encoding !== 'protobuf') throw new Error(`encoding ${String(encoding)}?`);
    if (encoding === 'protobuf' && !manifest && Object.keys(generated).length === 0) {
      throw new Error('protobuf needs a manifest (or generated codecs)');
    }
    this.manifest = manifest ? manifest.withProtocol() : PROTOCOL_MANIFEST;
    for (const [name, c] of Object.entries(generated)) this.byId.set(c.id, [name, c]);
  }

  /** How message `name` is delivered ('reliable' unless the manifest or generated code says otherwise). */
  delivery(name: string): Delivery {
    return this.generated[name]?.delivery || this.manifest.delivery(name);
  }

  /** One message's payload. */
  encode(name: string, body: object = {}): Uint8Array {
    const gen = this.generated[name];
    if (this.encoding === 'json') {
      const known = this.manifest.byName.get(name);
      const value = gen ? gen.toJson(body) : known ? normalizeJson(this.manifest, known, body as Record<string, unknown>) : body;
      return utf8(stringifyJson({ [name]: value }));
    }
    let id: number;
    let bytes: Uint8Array;
    if (gen) {
      id = gen.id;
      bytes = gen.encode(body);
    } else {
      const entry = this.manifest.message(name);
      const w = new Writer();
      encodeBody(this.manifest, entry, body as Record<string, unknown>, w);
      id = entry.id;
      bytes = w.finish();
    }
    const out = new Uint8Array(2 + bytes.length);
    out[0] = id >> 8;
    out[1] = id & 0xff;
    out.set(bytes, 2);
    return out;
  }

  /** One payload's message. */
  decode(data: Uint8Array | ArrayBuffer | string): Decoded {
    if (this.encoding === 'json') {
      const text = typeof data === 'string' ? data : fromUtf8(data instanceof Uint8Array ? data : new Uint8Array(data));
      const obj = parseJson(text) as Record<string, unknown> | null;
      const keys = obj && typeof obj === 'object' && !Array.isArray(obj) ? Object.keys(obj) : [];
      if (keys.length !== 1) throw new Error('a JSON payload has exactly one key');
      const name = keys[0];
      const raw = (obj![name] ?? {}) as Record<string, unknown>;
      const gen = this.generated[name];
      const entry = this.manifest.byName.get(name);
      return { name, body: gen ? gen.fromJson(raw) : entry ? normalizeJson(this.manifest, entry, raw) : raw };
    }
    const bytes = typeof data === 'string' ? utf8(data) : data instanceof Uint8Array ? data : new Uint8Array(data);
    if (bytes.length < 2) throw new Error('a protobuf payload has at least 2 bytes');
    const id = (bytes[0] << 8) | bytes[1];
    const gen = this.byId.get(id);
    if (gen) return { name: gen[0], body: gen[1].decode(bytes.subarray(2)) };
    const entry = this.manifest.byId.get(id);
    if (!entry) throw new Error(`unknown message id ${id}`);
    return { name: entry.name, body: decodeBody(this.manifest, entry, new Reader(bytes.subarray(2))) };
  }
}
