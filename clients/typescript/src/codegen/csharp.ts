// The C# generator: one file, Messages.cs, for the C# client (clients/csharp): a class per
// message and per nested type implementing `Longlink.IMessage` with PascalCase properties,
// an enum per enum, and `Messages` (the name/id table and `Messages.Registry`). Every field
// is read and written by code written out here, so IL2CPP and AOT builds need no reflection.

import type { Field, Message, Model } from './model.js';
import { variantName } from '../reflect.js';

/** The file this language writes. */
export const file = 'Messages.cs';

const CS_TYPES: Record<string, string> = {
  int32: 'int', sint32: 'int', sfixed32: 'int',
  int64: 'long', sint64: 'long', sfixed64: 'long',
  uint32: 'uint', fixed32: 'uint', uint64: 'ulong', fixed64: 'ulong',
  float: 'float', double: 'double', bool: 'bool', string: 'string', bytes: 'byte[]',
};

/** Protobuf's scalar type -> the ProtoWriter/ProtoReader method. */
const METHOD: Record<string, string> = {
  int32: 'Int32', sint32: 'SInt32', sfixed32: 'SFixed32', int64: 'Int64', sint64: 'SInt64', sfixed64: 'SFixed64',
  uint32: 'UInt32', fixed32: 'Fixed32', uint64: 'UInt64', fixed64: 'Fixed64',
  float: 'Float', double: 'Double', bool: 'Bool', string: 'String', bytes: 'Bytes', enum: 'Enum',
};

/** The Json reader's method for a scalar type. */
const JSON_READ: Record<string, string> = {
  int32: 'Int', sint32: 'Int', sfixed32: 'Int', int64: 'Long', sint64: 'Long', sfixed64: 'Long',
  uint32: 'UInt', fixed32: 'UInt', uint64: 'ULong', fixed64: 'ULong',
  float: 'Float', double: 'Double', bool: 'Bool', string: 'String', bytes: 'Bytes',
};

const q = (s: string) => JSON.stringify(s);

function wireOfScalar(scalar: string): number {
  if (scalar === 'fixed64' || scalar === 'sfixed64' || scalar === 'double') return 1;
  if (scalar === 'fixed32' || scalar === 'sfixed32' || scalar === 'float') return 5;
  if (scalar === 'string' || scalar === 'bytes') return 2;
  return 0;
}

/** One value's C# type. */
function oneType(f: Field, kind: string | undefined, scalar: string): string {
  if (kind === 'message' || kind === 'enum' || scalar === 'enum') return f.ref || 'int';
  return CS_TYPES[scalar] || 'byte[]';
}

/** The property's name in `owner` (a PascalCase name; `_` added where it would be the class's). */
function propName(name: string, owner: string): string {
  const p = variantName(name);
  return p === owner || p === 'Messages' ? `${p}_` : p;
}

function fieldType(f: Field): string {
  if (f.kind === 'map') return `Dictionary<${CS_TYPES[f.key!]}, ${oneType(f, f.valueKind, f.scalar)}>`;
  const one = oneType(f, f.kind, f.scalar);
  if (f.repeated) return `List<${one}>`;
  if (f.optional && f.kind !== 'message' && one !== 'string' && one !== 'byte[]') return `${one}?`;
  return one;
}

function initOf(f: Field): string {
  if (f.kind === 'map' || f.repeated) return ` = new ${fieldType(f)}()`;
  if (f.optional || f.kind === 'message') return '';
  if (f.scalar === 'string') return ' = ""';
  if (f.scalar === 'bytes') return ' = new byte[0]';
  return '';
}

/** Is `x` (of scalar/enum type) not its default? */
function isSet(x: string, kind: string | undefined, scalar: string): string {
  if (kind === 'enum' || scalar === 'enum') return `(int)${x} != 0`;
  if (scalar === 'string' || scalar === 'bytes') return `${x} != null && ${x}.Length > 0`;
  if (scalar === 'bool') return x;
  return `${x} != 0`;
}

/** Writes one value `x` (key first) to writer `w`. */
function writeOne(w: string, x: string, kind: string | undefined, scalar: string, n: number): string {
  if (kind === 'message') return `${w}.Tag(${n}, 2); ${w}.Message(${x});`;
  if (kind === 'enum' || scalar === 'enum') return `${w}.Tag(${n}, 0); ${w}.Enum((int)${x});`;
  return `${w}.Tag(${n}, ${wireOfScalar(scalar)}); ${w}.${METHOD[scalar]}(${x});`;
}

function writeField(f: Field, p: string): string[] {
  if (f.kind === 'map') {
    const key = `if (${isSet('kv.Key', 'scalar', f.key!)}) { ${writeOne('e', 'kv.Key', 'scalar', f.key!, 1)} }`;
    const value = f.valueKind === 'message'
      ? 'if (kv.Value != null) { var b = ProtoWriter.Body(kv.Value); if (b.Length > 0) { e.Tag(2, 2); e.LengthDelimited(b); } }'
      : `if (${isSet('kv.Value', f.valueKind, f.scalar)}) { ${writeOne('e', 'kv.Value', f.valueKind, f.scalar, 2)} }`;
    return [`if (${p} != null) foreach (var kv in ${p}) { var e = new ProtoWriter(); ${key} ${value} w.Tag(${f.number}, 2); w.LengthDelimited(e.ToArray()); }`];
  }
  if (f.repeated && f.packed) {
    const m = f.kind === 'enum' ? 'Enum((int)x)' : `${METHOD[f.scalar]}(x)`;
    return [`if (${p} != null && ${p}.Count > 0) { var e = new ProtoWriter(); foreach (var x in ${p}) e.${m}; w.Tag(${f.number}, 2); w.LengthDelimited(e.ToArray()); }`];
  }
  if (f.repeated) return [`if (${p} != null) foreach (var x in ${p}) { ${writeOne('w', 'x', f.kind, f.scalar, f.number)} }`];
  if (f.kind === 'message') return [`if (${p} != null) { ${writeOne('w', p, f.kind, f.scalar, f.number)} }`];
  if (f.optional) {
    const v = fieldType(f).endsWith('?') ? `${p}.Value` : p;
    return [`if (${p} != null) { ${writeOne('w', v, f.kind, f.scalar, f.number)} }`];
  }
  return [`if (${isSet(p, f.kind, f.scalar)}) { ${writeOne('w', p, f.kind, f.scalar, f.number)} }`];
}

/** Reads one value from reader `r` (an expression). */
function readOne(f: Field, r: string, kind: string | undefined, scalar: string): string {
  if (kind === 'message') return `${r}.Message(new ${f.ref}())`;
  if (kind === 'enum' || scalar === 'enum') return `(${f.ref || 'int'})${r}.Enum()`;
  return `${r}.${METHOD[scalar]}()`;
}

function readField(f: Field, p: string, m: Message): string {
  const head = `case ${f.number}:`;
  if (f.kind === 'map') {
    const value = f.valueKind === 'message' ? `new ${f.ref}()` : f.scalar === 'string' ? '""' : f.scalar === 'bytes' ? 'new byte[0]' : `default(${oneType(f, f.valueKind, f.scalar)})`;
    return `${head} { if (t != 2) { r.Skip(t); break; } var e = r.Sub(); var k = ${f.key === 'string' ? '""' : `default(${CS_TYPES[f.key!]})`}; var v = ${value}; `
      + `while (!e.Done) { int u; int i = e.Tag(out u); if (i == 1 && u == ${wireOfScalar(f.key!)}) k = ${readOne(f, 'e', 'scalar', f.key!)}; `
      + `else if (i == 2 && u == ${f.valueKind === 'message' ? 2 : f.valueKind === 'enum' ? 0 : wireOfScalar(f.scalar)}) v = ${readOne(f, 'e', f.valueKind, f.scalar)}; else e.Skip(u); } ${p}[k] = v; break; }`;
  }
  if (f.repeated && f.packed) {
    return `${head} if (t == 2) { var s = r.Sub(); while (!s.Done) ${p}.Add(${readOne(f, 's', f.kind, f.scalar)}); } else if (t == ${f.wire}) ${p}.Add(${readOne(f, 'r', f.kind, f.scalar)}); else r.Skip(t); break;`;
  }
  const value = readOne(f, 'r', f.kind, f.scalar);
  const target = f.oneof ? `${propName(f.name, m.ident)} = ${value}` : f.repeated ? `${p}.Add(${value})` : `${p} = ${value}`;
  return `${head} if (t != ${f.wire}) { r.Skip(t); break; } ${target}; break;`;
}

/** Writes one JSON value `x`. */
function jsonOne(x: string, kind: string | undefined, scalar: string): string {
  if (kind === 'message') return `if (${x} == null) w.Null(); else ((IMessage)${x}).WriteJson(w);`;
  if (kind === 'enum' || scalar === 'enum') return `w.Value((long)(int)${x});`;
  if (['int32', 'sint32', 'sfixed32', 'uint32', 'fixed32'].includes(scalar)) return `w.Value((long)${x});`;
  return `w.Value(${x});`;
}

function jsonWriteField(f: Field, p: string): string {
  const key = `w.Key(${q(f.name)});`;
  if (f.kind === 'map') {
    const k = f.key === 'bool' ? '(kv.Key ? "true" : "false")' : f.key === 'string' ? 'kv.Key' : 'kv.Key.ToString()';
    return `${key} w.BeginObject(); if (${p} != null) foreach (var kv in ${p}) { w.Key(${k}); ${jsonOne('kv.Value', f.valueKind, f.scalar)} } w.EndObject();`;
  }
  if (f.repeated) return `${key} w.BeginArray(); if (${p} != null) foreach (var x in ${p}) { ${jsonOne('x', f.kind, f.scalar)} } w.EndArray();`;
  if (f.optional && f.kind !== 'message') {
    const v = fieldType(f).endsWith('?') ? `${p}.Value` : p;
    return `${key} if (${p} == null) w.Null(); else { ${jsonOne(v, f.kind, f.scalar)} }`;
  }
  return `${key} ${jsonOne(p, f.kind, f.scalar)}`;
}

/** Reads one JSON value (an expression) from `x`, an object of the tree. */
function jsonRead(f: Field, x: string, kind: string | undefined, scalar: string): string {
  if (kind === 'message') return `Json.Message(new ${f.ref}(), ${x})`;
  if (kind === 'enum' || scalar === 'enum') return `(${f.ref || 'int'})Json.Int(${x})`;
  return `Json.${JSON_READ[scalar]}(${x})`;
}

function jsonReadField(f: Field, p: string): string {
  const get = `Json.Get(o, ${q(f.name)})`;
  if (f.kind === 'map') {
    const k = f.key === 'string' ? 'kv.Key' : f.key === 'bool' ? 'kv.Key == "true"' : `Json.${JSON_READ[f.key!]}(kv.Key)`;
    return `{ var m = Json.Obj(${get}); if (m != null) foreach (var kv in m) ${p}[${k}] = ${jsonRead(f, 'kv.Value', f.valueKind, f.scalar)}; }`;
  }
  if (f.repeated) return `foreach (var x in Json.Arr(${get})) ${p}.Add(${jsonRead(f, 'x', f.kind, f.scalar)});`;
  if (f.kind === 'message' || f.optional) return `{ var x = ${get}; ${p} = x == null ? null : ${fieldType(f).endsWith('?') ? `(${fieldType(f)})` : ''}${jsonRead(f, 'x', f.kind, f.scalar)}; }`;
  return `{ var x = ${get}; if (x != null) ${p} = ${jsonRead(f, 'x', f.kind, f.scalar)}; }`;
}

function oneofCode(m: Message, o: string): string[] {
  const arms = m.fields.filter((f) => f.oneof === o);
  const O = propName(o, m.ident);
  const lines = [
    `    /// <summary>Which field of the oneof <c>${o}</c> is set.</summary>`,
    `    public enum ${O}OneofCase { None = 0, ${arms.map((f) => `${f.variant} = ${f.number}`).join(', ')} }`,
    `    object ${o}_;`,
    `    /// <summary>Which field of <c>${o}</c> is set.</summary>`,
    `    public ${O}OneofCase ${O}Case { get; private set; }`,
    `    /// <summary>Unsets <c>${o}</c>.</summary>`,
    `    public void Clear${O}() { ${O}Case = ${O}OneofCase.None; ${o}_ = null; }`,
  ];
  for (const f of arms) {
    const t = oneType(f, f.kind, f.scalar);
    const P = propName(f.name, m.ident);
    const dflt = f.kind === 'message' ? 'null' : t === 'string' ? '""' : t === 'byte[]' ? 'new byte[0]' : `default(${t})`;
    lines.push(`    /// <summary>The oneof <c>${o}</c>'s field <c>${f.name}</c> (${f.number}).</summary>`,
      `    public ${t} ${P} { get { return ${O}Case == ${O}OneofCase.${f.variant} ? (${t})${o}_ : ${dflt}; } set { ${o}_ = value; ${O}Case = ${O}OneofCase.${f.variant}; } }`);
  }
  return lines;
}

function messageCode(m: Message): string[] {
  const plain = m.fields.filter((f) => !f.oneof);
  const P = (f: Field) => propName(f.name, m.ident);
  const what = m.name ? `<c>${m.name}</c> (id ${m.id}, ${m.direction}${m.delivery && m.delivery !== 'reliable' ? `, ${m.delivery}` : ''})` : `The nested type <c>${m.ident}</c>`;
  const lines = [`/// <summary>${what}.</summary>`, `public sealed class ${m.ident} : IMessage`, '{'];
  for (const f of plain) {
    lines.push(`    /// <summary><c>${f.name}</c> (${f.number}).</summary>`, `    public ${fieldType(f)} ${P(f)} { get; set; }${initOf(f) ? `${initOf(f)};` : ''}`);
  }
  for (const o of m.oneofs) lines.push(...oneofCode(m, o));
  lines.push('', `    string IMessage.MessageName { get { return ${q(m.name || m.ident)}; } }`, '');
  // Protobuf: fields by number, a oneof at its first field's.
  const writes: [number, string[]][] = plain.map((f) => [f.number, writeField(f, P(f))]);
  for (const o of m.oneofs) {
    const arms = m.fields.filter((f) => f.oneof === o);
    const O = propName(o, m.ident);
    const cases = arms.map((f) => `case ${O}OneofCase.${f.variant}: ${writeOne('w', P(f), f.kind, f.scalar, f.number)} break;`);
    writes.push([Math.min(...arms.map((f) => f.number)), [`switch (${O}Case) { ${cases.join(' ')} default: break; }`]]);
  }
  writes.sort((a, b) => a[0] - b[0]);
  lines.push('    void IMessage.WriteProto(ProtoWriter w)', '    {');
  for (const [, code] of writes) for (const l of code) lines.push(`        ${l}`);
  lines.push('    }', '');
  lines.push('    void IMessage.ReadProto(ProtoReader r)', '    {', '        while (!r.Done)', '        {',
    '            int t;', '            switch (r.Tag(out t))', '            {');
  for (const f of m.fields) lines.push(`                ${readField(f, P(f), m)}`);
  lines.push('                default: r.Skip(t); break;', '            }', '        }', '    }', '');
  lines.push('    void IMessage.WriteJson(JsonWriter w)', '    {', '        w.BeginObject();');
  for (const f of plain) lines.push(`        ${jsonWriteField(f, P(f))}`);
  for (const o of m.oneofs) {
    const O = propName(o, m.ident);
    const cases = m.fields.filter((f) => f.oneof === o)
      .map((f) => `case ${O}OneofCase.${f.variant}: w.BeginObject(); w.Key(${q(f.variant!)}); ${jsonOne(P(f), f.kind, f.scalar)} w.EndObject(); break;`);
    lines.push(`        w.Key(${q(o)}); switch (${O}Case) { ${cases.join(' ')} default: w.Null(); break; }`);
  }
  lines.push('        w.EndObject();', '    }', '');
  lines.push('    void IMessage.ReadJson(JsonObject o)', '    {', '        if (o == null) return;');
  for (const f of plain) lines.push(`        ${jsonReadField(f, P(f))}`);
  for (const o of m.oneofs) {
    const arms = m.fields.filter((f) => f.oneof === o)
      .map((f) => `if (c.ContainsKey(${q(f.variant!)})) ${P(f)} = ${jsonRead(f, `c[${q(f.variant!)}]`, f.kind, f.scalar)};`);
    lines.push(`        { var c = Json.Obj(Json.Get(o, ${q(o)})); if (c != null) { ${arms.join(' else ')} } }`);
  }
  lines.push('    }', '}', '');
  return lines;
}

/** The whole file; `namespace` is the C# namespace of the classes. */
export function emit(model: Model, source: string, namespace = 'Messages'): string {
  const out = [
    `// Generated by longlink-codegen from ${source}. Do not edit: regenerate.`,
    'using System.Collections.Generic;',
    'using Longlink;',
    '',
    `namespace ${namespace}`,
    '{',
  ];
  const body: string[] = [];
  for (const e of model.enums) {
    body.push(`/// <summary>The enum <c>${e.ident}</c>.</summary>`, `public enum ${e.ident}`, '{');
    for (const v of e.values) body.push(`    /// <summary>${v.name}.</summary>`, `    ${v.name} = ${v.number},`);
    body.push('}', '');
  }
  for (const m of [...model.messages, ...model.types]) body.push(...messageCode(m));
  body.push('/// <summary>The messages\' names and ids, and the registry for <c>Client.Connect</c>.</summary>',
    'public static class Messages', '{', '    /// <summary>Every message\'s id, by name.</summary>', '    public static class Ids', '    {');
  for (const m of model.messages) body.push(`        /// <summary><c>${m.name}</c>.</summary>`, `        public const ushort ${m.ident} = ${m.id};`);
  body.push('    }', '', '    /// <summary>Every message\'s name, by id order.</summary>',
    `    public static readonly string[] Names = { ${model.messages.map((m) => q(m.name!)).join(', ')} };`, '',
    '    /// <summary>A registry of every message (and the LL_ ones), for <c>Client.Connect</c>.</summary>',
    '    public static MessageRegistry Registry', '    {', '        get', '        {', '            var r = new MessageRegistry();');
  for (const m of model.messages) {
    const d = m.delivery === 'volatile' ? 'Volatile' : m.delivery === 'latest' ? 'Latest' : 'Reliable';
    body.push(`            r.Add(${q(m.name!)}, ${m.id}, Delivery.${d}, () => new ${m.ident}());`);
  }
  body.push('            return r;', '        }', '    }', '}');
  for (const l of body) out.push(l === '' ? '' : `    ${l}`);
  out.push('}', '');
  return out.join('\n');
}
