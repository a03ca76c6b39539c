// The TypeScript generator: one module, messages.ts, with an interface per message (and per
// nested type), an enum per enum, `MessageMap` (name -> interface) for `Client<MessageMap>`,
// the name/id table, and for every message protobuf encode/decode functions and JSON
// conversions written out field by field (`codecs`, for `Client.connect(url, { codecs })`).

import type { Field, Message, Model } from './model.js';

/** The file this language writes. */
export const file = 'messages.ts';

const LONG = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);

function scalarType(f: Field, scalar: string, kind: Field['kind'] | undefined): string {
  if (kind === 'message') return f.ref!;
  if (kind === 'enum' || scalar === 'enum') return f.ref || 'number';
  if (LONG.has(scalar)) return 'Long';
  if (scalar === 'bool') return 'boolean';
  if (scalar === 'string') return 'string';
  if (scalar === 'bytes') return 'Uint8Array';
  return 'number';
}

/** A field's TypeScript type (as decoded; sends take a `Partial`). */
function fieldType(f: Field): string {
  if (f.kind === 'map') return `Record<string, ${scalarType(f, f.scalar, f.valueKind)}>`;
  const one = scalarType(f, f.scalar, f.kind);
  if (f.repeated) return `${one}[]`;
  if (f.kind === 'message' || f.optional) return `${one} | null`;
  return one;
}

function defaultOf(f: Field): string {
  if (f.repeated) return '[]';
  if (f.kind === 'map') return '{}';
  if (f.kind === 'message' || f.optional) return 'null';
  if (f.scalar === 'bool') return 'false';
  if (f.scalar === 'string') return "''";
  if (f.scalar === 'bytes') return 'new Uint8Array(0)';
  return '0';
}

const q = (s: string) => JSON.stringify(s);
const prop = (obj: string, name: string) => (/^[A-Za-z_$][\w$]*$/.test(name) ? `${obj}.${name}` : `${obj}[${q(name)}]`);

/** Writes one value `x` of field `f` (its key first). */
function writeOne(f: Field, x: string, kind = f.kind, scalar = f.scalar, number = f.number): string {
  if (kind === 'message') return `w.tag(${number}, 2); w.nested((n) => enc_${f.ref}(n, ${x}));`;
  const wire = scalar === 'fixed64' || scalar === 'sfixed64' || scalar === 'double' ? 1
    : scalar === 'fixed32' || scalar === 'sfixed32' || scalar === 'float' ? 5
      : scalar === 'string' || scalar === 'bytes' ? 2 : 0;
  return `w.tag(${number}, ${wire}); w.${scalar}(${x});`;
}

function encodeField(f: Field): string[] {
  const v = prop('v', f.name);
  if (f.kind === 'map') {
    const keyWrite = writeOne({ ...f, kind: 'scalar' }, f.key === 'bool' ? "k === 'true'" : 'k', 'scalar', f.key!, 1);
    const valueWrite = f.valueKind === 'message'
      ? `const inner = new Writer(); enc_${f.ref}(inner, x); const b = inner.finish(); if (b.length > 0) { w.tag(2, 2); w.bytes(b); }`
      : `if (isSet(x)) { ${writeOne(f, 'x', 'scalar', f.scalar, 2)} }`;
    return [
      `for (const [k, x] of Object.entries(${v} ?? {})) {`,
      `  out.tag(${f.number}, 2);`,
      `  out.nested((w) => { if (isSet(${f.key === 'string' ? 'k' : f.key === 'bool' ? "k === 'true'" : 'BigInt(k)'})) { ${keyWrite} } ${valueWrite} });`,
      '}',
    ];
  }
  if (f.repeated && f.packed) {
    return [`if (${v} && ${v}.length > 0) { out.tag(${f.number}, 2); out.nested((w) => { for (const x of ${v}!) w.${f.scalar}(x); }); }`];
  }
  if (f.repeated) return [`for (const x of ${v} ?? []) { const w = out; ${writeOne(f, 'x')} }`];
  const test = f.kind === 'message' || f.optional ? `${v} != null` : `isSet(${v})`;
  return [`if (${test}) { const w = out; ${writeOne(f, `${v}!`)} }`];
}

function encodeOneof(m: Message, oneof: string): string[] {
  const c = prop('v', oneof);
  const arms = m.fields.filter((f) => f.oneof === oneof)
    .map((f) => `if (${q(f.variant!)} in c) { const w = out; ${writeOne(f, `(c as { ${f.variant}: any }).${f.variant}`)} }`);
  return [`{ const c = ${c}; if (c) { ${arms.join(' else ')} } }`];
}

function readOne(f: Field, kind = f.kind, scalar = f.scalar): string {
  return kind === 'message' ? `dec_${f.ref}(r.sub())` : `r.${scalar}()`;
}

function decodeField(f: Field): string {
  const v = prop('v', f.name);
  if (f.kind === 'map') {
    const value = f.valueKind === 'message' ? `dec_${f.ref}(e.sub())` : `e.${f.scalar}()`;
    const empty = f.valueKind === 'message' ? `dec_${f.ref}(new Reader(new Uint8Array(0)))` : defaultOf({ ...f, kind: 'scalar', repeated: false, optional: false });
    return `case ${f.number}: { if (t !== 2) { r.skip(t); break; } const e = r.sub(); let k: unknown = ${f.key === 'string' ? "''" : f.key === 'bool' ? 'false' : '0'}; let x: any = ${empty}; `
      + `while (!e.done()) { const [n, u] = e.tag(); if (n === 1) k = e.${f.key}(); else if (n === 2) x = ${value}; else e.skip(u); } ${v}[String(k)] = x; break; }`;
  }
  if (f.repeated && f.packed) {
    return `case ${f.number}: if (t === 2) { const p = r.sub(); while (!p.done()) ${v}.push(p.${f.scalar}()); } else ${v}.push(r.${f.scalar}()); break;`;
  }
  const target = f.oneof ? `${prop('v', f.oneof)} = { ${f.variant}: ${readOne(f)} }` : f.repeated ? `${v}.push(${readOne(f)})` : `${v} = ${readOne(f)}`;
  return `case ${f.number}: if (t !== ${f.wire}) { r.skip(t); break; } ${target}; break;`;
}

function fromJsonValue(f: Field, x: string, kind: Field['kind'] | undefined, scalar: string): string {
  if (kind === 'message') return `fromJson_${f.ref}(${x})`;
  if (scalar === 'bytes') return `toBytes(${x})`;
  return x;
}

function fromJsonField(f: Field): string {
  const src = `o[${q(f.name)}]`;
  const v = prop('v', f.name);
  if (f.kind === 'map') {
    return `if (${src} != null) for (const [k, x] of Object.entries(${src} as Record<string, any>)) ${v}[k] = ${fromJsonValue(f, 'x', f.valueKind, f.scalar)};`;
  }
  if (f.repeated) return `if (Array.isArray(${src})) ${v} = ${src}.map((x: any) => ${fromJsonValue(f, 'x', f.kind, f.scalar)});`;
  if (f.kind === 'message' || f.optional) return `if (${src} !== undefined) ${v} = ${src} === null ? null : ${fromJsonValue(f, src, f.kind, f.scalar)};`;
  return `if (${src} != null) ${v} = ${fromJsonValue(f, src, f.kind, f.scalar)};`;
}

function fromJsonOneof(m: Message, oneof: string): string {
  const arms = m.fields.filter((f) => f.oneof === oneof)
    .map((f) => `if (${q(f.variant!)} in c) ${prop('v', oneof)} = { ${f.variant}: ${fromJsonValue(f, `c[${q(f.variant!)}]`, f.kind, f.scalar)} };`);
  return `{ const c = o[${q(oneof)}]; if (c && typeof c === 'object') { ${arms.join(' else ')} } }`;
}

function messageCode(m: Message): string[] {
  const plain = m.fields.filter((f) => !f.oneof);
  const lines: string[] = [];
  lines.push(`/** ${m.name ? `\`${m.name}\` (id ${m.id}, ${m.direction}${m.delivery && m.delivery !== 'reliable' ? `, ${m.delivery}` : ''})` : `The nested type \`${m.ident}\``}. */`);
  lines.push(`export interface ${m.ident} {`);
  for (const f of plain) lines.push(`  ${/^[A-Za-z_$][\w$]*$/.test(f.name) ? f.name : q(f.name)}: ${fieldType(f)};`);
  for (const o of m.oneofs) {
    const arms = m.fields.filter((f) => f.oneof === o).map((f) => `{ ${f.variant}: ${scalarType(f, f.scalar, f.kind)} }`);
    lines.push(`  ${o}: ${arms.join(' | ')} | null;`);
  }
  lines.push('}', '');
  const defaults = [...plain.map((f) => `${q(f.name)}: ${defaultOf(f)}`), ...m.oneofs.map((o) => `${q(o)}: null`)];
  lines.push(`function new_${m.ident}(): ${m.ident} {`, `  return { ${defaults.join(', ')} };`, '}', '');
  lines.push(`function enc_${m.ident}(out: Writer, v: Partial<${m.ident}>): void {`);
  const byNumber: [number, string[]][] = [];
  for (const f of plain) byNumber.push([f.number, encodeField(f)]);
  for (const o of m.oneofs) byNumber.push([Math.min(...m.fields.filter((f) => f.oneof === o).map((f) => f.number)), encodeOneof(m, o)]);
  byNumber.sort((a, b) => a[0] - b[0]);
  for (const [, code] of byNumber) for (const l of code) lines.push(`  ${l}`);
  lines.push('}', '');
  lines.push(`function dec_${m.ident}(r: Reader): ${m.ident} {`, `  const v = new_${m.ident}();`, '  while (!r.done()) {', '    const [n, t] = r.tag();', '    switch (n) {');
  for (const f of m.fields) lines.push(`      ${decodeField(f)}`);
  lines.push('      default: r.skip(t);', '    }', '  }', '  return v;', '}', '');
  lines.push(`function fromJson_${m.ident}(o: any): ${m.ident} {`, `  const v = new_${m.ident}();`, '  if (o == null || typeof o !== \'object\') return v;');
  for (const f of plain) lines.push(`  ${fromJsonField(f)}`);
  for (const o of m.oneofs) lines.push(`  ${fromJsonOneof(m, o)}`);
  lines.push('  return v;', '}', '');
  return lines;
}

/** The whole module; `runtime` is the package that provides `Writer`, `Reader` and the codec types. */
export function emit(model: Model, source: string, runtime = 'longlink-client'): string {
  const out: string[] = [
    `// Generated by longlink-codegen from ${source}. Do not edit: regenerate.`,
    '/* eslint-disable */',
    `import { Reader, Writer, isSet, toBytes, type Long } from '${runtime}/runtime';`,
    `import type { GeneratedCodec } from '${runtime}';`,
    '',
    'export type { Long };',
    '',
  ];
  for (const e of model.enums) {
    out.push(`export enum ${e.ident} {`);
    for (const v of e.values) out.push(`  ${v.name} = ${v.number},`);
    out.push('}', '');
  }
  for (const m of [...model.messages, ...model.types]) out.push(...messageCode(m));
  out.push('/** Every message by name: `Client<MessageMap>` types `send`, `on` and `next` with it. */');
  out.push('export interface MessageMap {');
  for (const m of model.messages) out.push(`  ${m.name}: ${m.ident};`);
  out.push('}', '');
  out.push('/** Names and ids. */');
  out.push('export const MESSAGES = [');
  for (const m of model.messages) out.push(`  { name: ${q(m.name!)}, id: ${m.id}, direction: ${q(m.direction!)}, delivery: ${q(m.delivery!)} },`);
  out.push('] as const;', '');
  out.push('/** The codecs, for `Client.connect(url, { codecs })`: no run-time reflection. */');
  out.push('export const codecs: { readonly [K in keyof MessageMap]: GeneratedCodec<MessageMap[K]> } = {');
  for (const m of model.messages) {
    out.push(`  ${m.name}: {`,
      `    id: ${m.id},`,
      `    delivery: ${q(m.delivery!)},`,
      `    encode(v) { const w = new Writer(); enc_${m.ident}(w, v); return w.finish(); },`,
      `    decode(b) { return dec_${m.ident}(new Reader(b)); },`,
      `    toJson(v) { return { ...new_${m.ident}(), ...v }; },`,
      `    fromJson(o) { return fromJson_${m.ident}(o); },`,
      '  },');
  }
  out.push('};', '');
  return out.join('\n');
}
