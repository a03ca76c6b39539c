// The message manifest (`longlink-manifest/2`): every message the server registered, with
// its JSON name, protobuf id, direction, delivery class and fields, and the nested types
// they use. The server prints it (`longlink-chat manifest`) and serves it at
// `/manifest.json`; `longlink-codegen` generates code from it; the client encodes protobuf
// from it when no generated code is given.

/** How the server sends a message type: reliable ones are numbered and replayed on resume, volatile ones are not. */
export type Delivery = 'reliable' | 'volatile' | 'latest';

/** One field, as the manifest gives it. */
export interface FieldDoc {
  name: string;
  number: number;
  /** A protobuf scalar (`'int64'`, `'string'`, ...), `'message'`, `'enum'` or `'map'`. */
  type: string;
  /** The message or enum type (`.pkg.Name`) of a `'message'`/`'enum'` field or of a map's value. */
  type_name?: string;
  repeated: boolean;
  key_type?: string;
  value_type?: string;
  oneof?: string;
  optional?: boolean;
}

/** One registered message. */
export interface MessageDoc {
  name: string;
  id: number;
  direction: 'incoming' | 'outgoing' | string;
  proto?: string;
  /** Absent: `'reliable'`. */
  delivery?: Delivery;
  fields: FieldDoc[];
}

/** A nested message or enum type. */
export interface TypeDoc {
  name: string;
  kind: 'message' | 'enum' | string;
  fields?: FieldDoc[];
  values?: { name: string; number: number }[];
}

/** The manifest document. */
export interface ManifestDoc {
  format: string;
  messages: MessageDoc[];
  types?: TypeDoc[];
}

/** A message or nested message type with its fields indexed by number. */
export interface MessageEntry extends MessageDoc {
  byNumber: Map<number, FieldDoc>;
}

/**
 * longlink's own messages (`LL_`): session resume (65530 to 65535) and `LL_Move` (65529),
 * as manifest entries (crates/longlink-wire/src/resume.md).
 */
export const PROTOCOL_MESSAGES: readonly MessageDoc[] = Object.freeze([
  { name: 'LL_Move', id: 65529, direction: 'outgoing', fields: [f('after_ms', 1, 'uint32')] },
  { name: 'LL_SessionStart', id: 65530, direction: 'incoming', fields: [] },
  { name: 'LL_Session', id: 65531, direction: 'outgoing', fields: [f('token', 1, 'string'), f('window_s', 2, 'uint32')] },
  { name: 'LL_Resume', id: 65532, direction: 'incoming', fields: [f('token', 1, 'string'), f('last_seq', 2, 'uint64')] },
  { name: 'LL_Resumed', id: 65533, direction: 'outgoing', fields: [f('token', 1, 'string'), f('last_seq', 2, 'uint64')] },
  { name: 'LL_ResumeRefused', id: 65534, direction: 'outgoing', fields: [f('reason', 1, 'string')] },
  { name: 'LL_Ack', id: 65535, direction: 'incoming', fields: [f('seq', 1, 'uint64')] },
]);

function f(name: string, number: number, type: string): FieldDoc {
  return { name, number, type, repeated: false };
}

/** Whether `name` is one of longlink's own messages (they all start with `LL_`). */
export function isProtocolMessage(name: string): boolean {
  return name.startsWith('LL_');
}

function entry(m: MessageDoc): MessageEntry {
  const fields = (m.fields || []).map((x) => ({ ...x }));
  return { ...m, fields, byNumber: new Map(fields.map((x) => [x.number, x])) };
}

/** Message names, ids, fields and delivery classes, from a longlink manifest document. */
export class Manifest {
  readonly doc: ManifestDoc;
  readonly byName = new Map<string, MessageEntry>();
  readonly byId = new Map<number, MessageEntry>();
  /** Nested message types by full name (`.pkg.Name`). */
  readonly types = new Map<string, MessageEntry>();
  /** Enum types by full name. */
  readonly enums = new Map<string, TypeDoc>();

  constructor(doc: ManifestDoc) {
    if (!doc || !Array.isArray(doc.messages)) throw new Error('not a longlink manifest');
    this.doc = doc;
    for (const m of doc.messages) {
      const e = entry(m);
      this.byName.set(m.name, e);
      this.byId.set(m.id, e);
    }
    for (const t of doc.types || []) {
      if (t.kind === 'enum') this.enums.set(t.name, t);
      else this.types.set(t.name, entry({ name: t.name, id: -1, direction: '', fields: t.fields || [] }));
    }
  }

  /** A manifest from its JSON text (or the parsed document). */
  static parse(json: string | ManifestDoc): Manifest {
    return new Manifest(typeof json === 'string' ? JSON.parse(json) : json);
  }

  /**
   * Loads a manifest: fetched when `urlOrPath` is a URL (or in a browser, relative to the
   * page: default `/manifest.json`), read from the file system when it is a path in Node.
   */
  static async load(urlOrPath = '/manifest.json'): Promise<Manifest> {
    const isUrl = /^[a-z][a-z0-9+.-]*:\/\//i.test(urlOrPath) && !urlOrPath.startsWith('file:');
    const inBrowser = typeof (globalThis as { document?: unknown }).document !== 'undefined';
    if (isUrl || inBrowser) {
      const res = await fetch(urlOrPath);
      if (!res.ok) throw new Error(`${urlOrPath}: HTTP ${res.status}`);
      return new Manifest(await res.json());
    }
    const fs = 'node:fs/promises';
    const { readFile } = (await import(fs)) as { readFile(p: string | URL, e: string): Promise<string> };
    const path = urlOrPath.startsWith('file:') ? new URL(urlOrPath) : urlOrPath;
    return Manifest.parse(await readFile(path, 'utf8'));
  }

  /** The message called `name` (an error if there is none). */
  message(name: string): MessageEntry {
    const m = this.byName.get(name);
    if (!m) throw new Error(`unknown message ${name}`);
    return m;
  }

  /** A nested message type by full name (an error if there is none). */
  type(name: string): MessageEntry {
    const t = this.types.get(name);
    if (!t) throw new Error(`unknown type ${name}`);
    return t;
  }

  /** How message `name` is delivered (absent or unknown: `'reliable'`). */
  delivery(name: string): Delivery {
    return this.byName.get(name)?.delivery || 'reliable';
  }

  /**
   * This manifest with longlink's own messages ([`PROTOCOL_MESSAGES`]) added: itself if it
   * has them already; an error if one of its messages takes their names or ids.
   */
  withProtocol(): Manifest {
    const missing: MessageDoc[] = [];
    for (const m of PROTOCOL_MESSAGES) {
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

/** A manifest of longlink's own messages only (for a client given generated code). */
export const PROTOCOL_MANIFEST = new Manifest({ format: 'longlink-manifest/2', messages: [...PROTOCOL_MESSAGES] });
