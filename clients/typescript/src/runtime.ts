// The protobuf and JSON primitives that both the manifest-driven codec (wire/) and the code
// `longlink-codegen` generates are written with: a writer and a reader of protobuf's wire
// types, 64-bit integers as `number` when exact and `bigint` otherwise, and a JSON reader
// that keeps integers beyond 2^53 exact. No reflection here: one method per scalar type.

/** A 64-bit integer: a `number` when it is exact (|n| <= 2^53 - 1), else a `bigint`; either may be sent. */
export type Long = number | bigint;

const MASK64 = (1n << 64n) - 1n;
const SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });

/** `n` as a `number` when exact, else as it is. */
export function exact(n: bigint): Long {
  return n <= SAFE && n >= -SAFE ? Number(n) : n;
}

/** An integer value (number, bigint, decimal string or bool) as a bigint; else an error naming `what`. */
export function toBigInt(v: unknown, what: string): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'boolean') return v ? 1n : 0n;
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  if (typeof v === 'string' && /^-?\d+$/.test(v.trim())) return BigInt(v.trim());
  throw new Error(`${what}: ${JSON.stringify(String(v))} is not an integer`);
}

/** Protobuf wire types. */
export const VARINT = 0;
export const I64 = 1;
export const LEN = 2;
export const I32 = 5;

/** Appends protobuf fields to a growing buffer. */
export class Writer {
  private buf = new Uint8Array(64);
  private len = 0;

  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  /** One byte. */
  byte(b: number): void {
    this.room(1);
    this.buf[this.len++] = b;
  }

  /** Raw bytes. */
  raw(bytes: Uint8Array): void {
    this.room(bytes.length);
    this.buf.set(bytes, this.len);
    this.len += bytes.length;
  }

  /** A varint of an unsigned 64-bit value. */
  varint(v: bigint): void {
    v &= MASK64;
    while (v > 0x7fn) {
      this.byte(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.byte(Number(v));
  }

  /** A small non-negative varint (lengths, tags). */
  uvarint(n: number): void {
    while (n > 0x7f) {
      this.byte((n & 0x7f) | 0x80);
      n = Math.floor(n / 128);
    }
    this.byte(n);
  }

  /** A field's key. */
  tag(number: number, wire: number): void {
    this.uvarint(number * 8 + wire);
  }

  int32(v: unknown, what = 'int32'): void { this.varint(BigInt.asUintN(64, BigInt.asIntN(32, toBigInt(v, what)))); }
  int64(v: unknown, what = 'int64'): void { this.varint(BigInt.asUintN(64, toBigInt(v, what))); }
  uint32(v: unknown, what = 'uint32'): void { this.varint(BigInt.asUintN(32, toBigInt(v, what))); }
  uint64(v: unknown, what = 'uint64'): void { this.varint(BigInt.asUintN(64, toBigInt(v, what))); }
  sint32(v: unknown, what = 'sint32'): void { this.zigzag(toBigInt(v, what), 32); }
  sint64(v: unknown, what = 'sint64'): void { this.zigzag(toBigInt(v, what), 64); }
  bool(v: unknown): void { this.byte(v ? 1 : 0); }
  enum(v: unknown, what = 'enum'): void { this.int32(v, what); }
  fixed32(v: unknown, what = 'fixed32'): void { this.fixed(BigInt.asUintN(32, toBigInt(v, what)), 4); }
  sfixed32(v: unknown, what = 'sfixed32'): void { this.fixed(BigInt.asUintN(32, toBigInt(v, what)), 4); }
  fixed64(v: unknown, what = 'fixed64'): void { this.fixed(BigInt.asUintN(64, toBigInt(v, what)), 8); }
  sfixed64(v: unknown, what = 'sfixed64'): void { this.fixed(BigInt.asUintN(64, toBigInt(v, what)), 8); }
  float(v: unknown): void { const d = new DataView(new ArrayBuffer(4)); d.setFloat32(0, Number(v), true); this.raw(new Uint8Array(d.buffer)); }
  double(v: unknown): void { const d = new DataView(new ArrayBuffer(8)); d.setFloat64(0, Number(v), true); this.raw(new Uint8Array(d.buffer)); }
  string(v: unknown): void { this.bytes(textEncoder.encode(String(v))); }
  bytes(v: unknown): void {
    const b = v instanceof Uint8Array ? v : Uint8Array.from(v as ArrayLike<number>);
    this.uvarint(b.length);
    this.raw(b);
  }

  /** A length-delimited part written by `f` (a nested message, a packed list, a map entry). */
  nested(f: (w: Writer) => void): void {
    const inner = new Writer();
    f(inner);
    this.bytes(inner.finish());
  }

  private zigzag(n: bigint, bits: number): void {
    n = BigInt.asIntN(bits, n);
    this.varint(BigInt.asUintN(bits, (n << 1n) ^ (n >> BigInt(bits - 1))));
  }

  private fixed(v: bigint, size: 4 | 8): void {
    for (let i = 0; i < size; i++) {
      this.byte(Number(v & 0xffn));
      v >>= 8n;
    }
  }

  /** What was written. */
  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

/** Reads protobuf fields from bytes. */
export class Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}

  done(): boolean {
    return this.pos >= this.buf.length;
  }

  varint(): bigint {
    let v = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (this.pos >= this.buf.length) throw new Error('truncated varint');
      const b = this.buf[this.pos++];
      v |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return v & MASK64;
    }
    throw new Error('varint too long');
  }

  /** A varint that must fit a safe integer (a length or a tag). */
  uvarint(): number {
    const v = this.varint();
    if (v > SAFE) throw new Error('length out of range');
    return Number(v);
  }

  /** A field's key: `[number, wire type]`. */
  tag(): [number, number] {
    const t = this.uvarint();
    return [Math.floor(t / 8), t & 7];
  }

  take(n: number): Uint8Array {
    if (n > this.buf.length - this.pos) throw new Error('truncated field');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** The body of a length-delimited field, as its own reader. */
  sub(): Reader {
    return new Reader(this.take(this.uvarint()));
  }

  skip(wire: number): void {
    switch (wire) {
      case VARINT: this.varint(); break;
      case I64: this.take(8); break;
      case LEN: this.take(this.uvarint()); break;
      case I32: this.take(4); break;
      default: throw new Error(`wire type ${wire} is not supported`);
    }
  }

  private le(n: 4 | 8): bigint {
    const b = this.take(n);
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    return v;
  }

  int32(): number { return Number(BigInt.asIntN(32, this.varint())); }
  int64(): Long { return exact(BigInt.asIntN(64, this.varint())); }
  uint32(): number { return Number(BigInt.asUintN(32, this.varint())); }
  uint64(): Long { return exact(this.varint()); }
  sint32(): number { return Number(BigInt.asIntN(32, unzigzag(this.varint()))); }
  sint64(): Long { return exact(BigInt.asIntN(64, unzigzag(this.varint()))); }
  bool(): boolean { return this.varint() !== 0n; }
  enum(): number { return this.int32(); }
  fixed32(): number { return Number(this.le(4)); }
  sfixed32(): number { return Number(BigInt.asIntN(32, this.le(4))); }
  fixed64(): Long { return exact(this.le(8)); }
  sfixed64(): Long { return exact(BigInt.asIntN(64, this.le(8))); }
  float(): number { const b = this.take(4); return new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true); }
  double(): number { const b = this.take(8); return new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, true); }
  string(): string { return textDecoder.decode(this.take(this.uvarint())); }
  bytes(): Uint8Array { return this.take(this.uvarint()).slice(); }
}

function unzigzag(u: bigint): bigint {
  return (u >> 1n) ^ -(u & 1n);
}

/** The wire type of a scalar type name (`'int32'`, `'string'`, ...), or -1 for another. */
export function wireOf(type: string): number {
  switch (type) {
    case 'int32': case 'uint32': case 'sint32': case 'int64': case 'uint64': case 'sint64':
    case 'bool': case 'enum':
      return VARINT;
    case 'fixed64': case 'sfixed64': case 'double':
      return I64;
    case 'string': case 'bytes': case 'message': case 'map':
      return LEN;
    case 'fixed32': case 'sfixed32': case 'float':
      return I32;
    default:
      return -1;
  }
}

// ------------------------------------------------------------------------------- JSON

const BIG_MARK = '\u0000longlink-bigint:';

/**
 * JSON.parse, except that integers beyond 2^53 - 1 come out as exact `bigint`s (64-bit ids
 * and uids). Strings are left alone.
 */
export function parseJson(text: string): unknown {
  let out = '';
  let last = 0;
  let marked = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34) { // a string: skip to its end
      for (i++; i < text.length && text.charCodeAt(i) !== 34; i++) if (text.charCodeAt(i) === 92) i++;
    } else if (c === 45 || (c >= 48 && c <= 57)) {
      let j = i + 1;
      while (j < text.length && /[0-9.eE+-]/.test(text[j])) j++;
      const lit = text.slice(i, j);
      if (/^-?\d{16,}$/.test(lit) && !Number.isSafeInteger(Number(lit))) {
        out += text.slice(last, i) + JSON.stringify(BIG_MARK + lit);
        last = j;
        marked = true;
      }
      i = j - 1;
    }
  }
  if (!marked) return JSON.parse(text);
  out += text.slice(last);
  return JSON.parse(out, (_k, v) => (typeof v === 'string' && v.startsWith(BIG_MARK) ? BigInt(v.slice(BIG_MARK.length)) : v));
}

/** JSON.stringify, except that `bigint`s become exact JSON numbers and `Uint8Array`s arrays of numbers. */
export function stringifyJson(value: unknown): string {
  let marked = false;
  const text = JSON.stringify(value, (_k, v) => {
    if (typeof v === 'bigint') { marked = true; return BIG_MARK + v.toString(); }
    if (v instanceof Uint8Array) return Array.from(v);
    return v;
  });
  if (!marked) return text;
  return text.replace(/"\\u0000longlink-bigint:(-?\d+)"/g, '$1');
}

/** UTF-8 bytes of a string. */
export function utf8(text: string): Uint8Array {
  return textEncoder.encode(text);
}

/** A string of UTF-8 bytes (an error for bad UTF-8). */
export function fromUtf8(bytes: Uint8Array): string {
  return textDecoder.decode(bytes);
}

/** Bytes as JSON gives them (an array of numbers, from serde's `Vec<u8>`), or as they are. */
export function toBytes(v: unknown): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (Array.isArray(v)) return Uint8Array.from(v as number[]);
  if (v === null || v === undefined) return new Uint8Array(0);
  throw new Error(`${JSON.stringify(v)} is not bytes`);
}

/** Whether a scalar is not its protobuf default (proto3 leaves defaults off the wire). */
export function isSet(v: unknown): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v === 'string') return v !== '';
  if (typeof v === 'boolean') return v;
  if (typeof v === 'bigint') return v !== 0n;
  if (typeof v === 'number') return v !== 0;
  if (v instanceof Uint8Array || Array.isArray(v)) return v.length > 0;
  return true;
}
