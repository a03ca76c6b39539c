// What every language's generator starts from: the manifest's messages and the types they
// use, each with a name that is an identifier, and each field resolved (its kind, the name
// of its message or enum type, its protobuf wire type, whether it is packed). A language
// (ts.ts, csharp.ts) only prints this.

import type { FieldDoc, ManifestDoc } from '../manifest.js';
import { LEN, wireOf } from '../runtime.js';
import { variantName } from '../reflect.js';

/** One field, resolved. */
export interface Field {
  name: string;
  number: number;
  /** `'scalar'`, `'message'`, `'enum'` or `'map'`. */
  kind: 'scalar' | 'message' | 'enum' | 'map';
  /** The protobuf scalar type (`'int64'`, ...; `'enum'` for an enum; the value's for a map). */
  scalar: string;
  /** The identifier of the message or enum type (of the value, for a map). */
  ref?: string;
  /** A map's key type (a scalar). */
  key?: string;
  /** A map value's kind. */
  valueKind?: 'scalar' | 'message' | 'enum';
  repeated: boolean;
  /** A repeated number: packed on the wire. */
  packed: boolean;
  /** The oneof it belongs to, and its variant name there (prost's: `TextValue`). */
  oneof?: string;
  variant?: string;
  optional: boolean;
  /** Its protobuf wire type. */
  wire: number;
}

/** A message type: registered (with an id) or nested. */
export interface Message {
  /** Its identifier (the registered name, or the full name without the package, `_`-joined). */
  ident: string;
  /** The registered name (the JSON key); null for a type that is not registered. */
  name: string | null;
  id: number | null;
  direction: string | null;
  delivery: string | null;
  fields: Field[];
  /** The oneofs, in order of their first field. */
  oneofs: string[];
}

/** An enum type. */
export interface Enum {
  ident: string;
  values: { name: string; number: number }[];
}

/** What a generator prints. */
export interface Model {
  /** Registered application messages (not the LL_ ones), by id. */
  messages: Message[];
  /** Nested message types that are not registered themselves. */
  types: Message[];
  enums: Enum[];
}

/** `.pkg.Outer.Inner` -> `Outer_Inner` (the package, from the registered messages, dropped). */
function identOf(full: string, packages: Set<string>): string {
  let name = full.replace(/^\./, '');
  for (const p of packages) if (p && name.startsWith(`${p}.`)) { name = name.slice(p.length + 1); break; }
  return name.replace(/\./g, '_');
}

/** The model of a manifest document. */
export function model(doc: ManifestDoc): Model {
  const app = doc.messages.filter((m) => !m.name.startsWith('LL_'));
  const packages = new Set<string>();
  for (const m of doc.messages) if (m.proto && m.proto.includes('.')) packages.add(m.proto.slice(0, m.proto.lastIndexOf('.')));
  for (const t of doc.types || []) packages.add(t.name.replace(/^\./, '').split('.')[0]);
  // A type that is also registered has the registered name.
  const idents = new Map<string, string>();
  for (const m of app) if (m.proto) idents.set(`.${m.proto}`, m.name);
  const taken = new Set(app.map((m) => m.name));
  for (const t of doc.types || []) {
    if (idents.has(t.name)) continue;
    let ident = identOf(t.name, packages);
    if (taken.has(ident)) ident = t.name.replace(/^\./, '').replace(/\./g, '_');
    idents.set(t.name, ident);
    taken.add(ident);
  }
  const kindOf = (type: string): Field['kind'] => (type === 'message' || type === 'enum' || type === 'map' ? type : 'scalar');
  const field = (f: FieldDoc): Field => {
    const kind = kindOf(f.type);
    const scalar = kind === 'map' ? f.value_type || 'bytes' : f.type;
    const oneof = f.oneof && !f.optional ? f.oneof : undefined;
    return {
      name: f.name,
      number: f.number,
      kind,
      scalar,
      ref: f.type_name ? idents.get(f.type_name) || identOf(f.type_name, packages) : undefined,
      key: f.key_type,
      valueKind: kind === 'map' ? (kindOf(scalar) as Field['valueKind']) : undefined,
      repeated: f.repeated,
      packed: f.repeated && wireOf(f.type) !== LEN,
      oneof,
      variant: oneof ? variantName(f.name) : undefined,
      optional: !!f.optional,
      wire: wireOf(f.type),
    };
  };
  const message = (ident: string, fields: FieldDoc[], m: Partial<Message> = {}): Message => {
    const resolved = [...fields].sort((a, b) => a.number - b.number).map(field);
    const oneofs = [...new Set(resolved.filter((x) => x.oneof).map((x) => x.oneof!))];
    return { ident, name: null, id: null, direction: null, delivery: null, ...m, fields: resolved, oneofs };
  };
  const registered = new Set(app.filter((m) => m.proto).map((m) => `.${m.proto}`));
  return {
    messages: [...app].sort((a, b) => a.id - b.id).map((m) => message(m.name, m.fields || [], {
      name: m.name, id: m.id, direction: m.direction, delivery: m.delivery || 'reliable',
    })),
    types: (doc.types || []).filter((t) => t.kind === 'message' && !registered.has(t.name))
      .map((t) => message(idents.get(t.name)!, t.fields || [])),
    enums: (doc.types || []).filter((t) => t.kind === 'enum')
      .map((t) => ({ ident: idents.get(t.name)!, values: t.values || [] })),
  };
}
