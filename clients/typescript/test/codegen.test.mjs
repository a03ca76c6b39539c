// Generated code against the server's own encodings: test/golden/kinds.json holds the
// manifest and the payloads the Rust server writes (prost and serde, through longlink's
// processor; examples/chat/tests/codegen_golden.rs) for every chat message and for messages
// with every kind of field. The generated codecs and the manifest-driven codec must decode
// those bytes to the same value, and encode that value back to the same bytes (protobuf) or
// the same JSON document. And `tsc --noEmit` type-checks an example that uses the generated
// types (test/example/app.ts), including lines that must not compile.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { Codec, Manifest } from '../dist/index.js';
import { parseJson, stringifyJson } from '../dist/runtime.js';
import { PACKAGE, codegen, compileGenerated, hex, scratch, tsc, unhex } from './helpers.mjs';

const golden = JSON.parse(readFileSync(path.join(PACKAGE, 'test/golden/kinds.json'), 'utf8'));
let gen;
let work;

before(async () => {
  work = scratch('codegen');
  const manifest = path.join(work.dir, 'manifest.json');
  writeFileSync(manifest, JSON.stringify(golden.manifest));
  codegen(['--manifest', manifest, '--lang', 'ts', '--out', work.dir]);
  compileGenerated(work.dir);
  gen = await import(pathToFileURL(path.join(work.dir, 'messages.js')).href);
});

after(() => work.done());

test('the golden file covers every chat message and every kind of field', { timeout: 120000 }, () => {
  const names = new Set(golden.samples.map((s) => s.name));
  for (const m of golden.manifest.messages) if (!m.name.startsWith('LL_')) assert.ok(names.has(m.name), m.name);
  const kinds = new Set(golden.manifest.messages.flatMap((m) => m.fields.map((f) => f.type)));
  for (const k of ['int32', 'int64', 'uint32', 'uint64', 'sint32', 'sint64', 'fixed32', 'fixed64', 'sfixed32',
    'sfixed64', 'float', 'double', 'bool', 'string', 'bytes', 'enum', 'message', 'map']) assert.ok(kinds.has(k), k);
});

test('generated protobuf codecs decode and re-encode the server\'s bytes exactly', () => {
  for (const { name, protobuf } of golden.samples) {
    const bytes = unhex(protobuf);
    const c = gen.codecs[name];
    assert.equal((bytes[0] << 8) | bytes[1], c.id, name);
    const value = c.decode(bytes.subarray(2));
    assert.equal(hex(c.encode(value)), protobuf.slice(4), `${name}: ${stringifyJson(value)}`);
  }
});

test('generated JSON conversions agree with the server\'s JSON and with its protobuf', () => {
  for (const { name, json, protobuf } of golden.samples) {
    const c = gen.codecs[name];
    const fromJson = c.fromJson(parseJson(json)[name]);
    assert.deepEqual(fromJson, c.decode(unhex(protobuf).subarray(2)), name);
    assert.deepEqual(parseJson(stringifyJson({ [name]: c.toJson(fromJson) })), parseJson(json), name);
  }
});

test('the manifest-driven codec (no generated code) agrees with the server in both encodings', { timeout: 120000 }, () => {
  const manifest = new Manifest(golden.manifest);
  const pb = new Codec('protobuf', manifest);
  const js = new Codec('json', manifest);
  for (const { name, json, protobuf } of golden.samples) {
    const decoded = pb.decode(unhex(protobuf));
    assert.equal(decoded.name, name);
    assert.deepEqual(decoded.body, gen.codecs[name].decode(unhex(protobuf).subarray(2)), name);
    assert.equal(hex(pb.encode(name, decoded.body)), protobuf, name);
    const fromJson = js.decode(json);
    assert.deepEqual(fromJson.body, decoded.body, name);
    assert.deepEqual(parseJson(new TextDecoder().decode(js.encode(name, fromJson.body))), parseJson(json), name);
  }
});

test('a client given generated codecs speaks the same bytes as the server', { timeout: 120000 }, () => {
  const codec = new Codec('protobuf', null, gen.codecs);
  for (const { name, protobuf } of golden.samples) {
    const { name: got, body } = codec.decode(unhex(protobuf));
    assert.equal(got, name);
    assert.equal(hex(codec.encode(name, body)), protobuf);
  }
  // Its own LL_ messages need no manifest.
  assert.equal(hex(codec.encode('LL_Ack', { seq: 12 })), 'ffff080c');
});

test('64-bit integers are exact: numbers when safe, bigints beyond 2^53', { timeout: 120000 }, () => {
  const login = golden.samples.find((s) => s.name === 'S2C_UserLogin');
  const body = gen.codecs.S2C_UserLogin.decode(unhex(login.protobuf).subarray(2));
  assert.equal(body.uid, 9007199254740993n);
  assert.equal(body.ret, 1);
  assert.equal(gen.MESSAGES.find((m) => m.name === 'S2C_UserLogin').id, 2);
});

test('tsc --noEmit type-checks an example using the generated types, and refuses wrong uses', { timeout: 120000 }, () => {
  const ex = scratch('example');
  try {
    const chat = path.join(PACKAGE, '../../examples/chat/tests/manifest.json');
    codegen(['--manifest', chat, '--lang', 'ts', '--out', ex.dir]);
    copyFileSync(path.join(PACKAGE, 'test/example/app.ts'), path.join(ex.dir, 'app.ts'));
    const args = ['--noEmit', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2020',
      '--strict', '--skipLibCheck', '--types', 'node', '--typeRoots', path.join(PACKAGE, 'node_modules/@types'),
      path.join(ex.dir, 'app.ts')];
    tsc(args);
    // Each marked line of the example is a type error once unmarked.
    const source = readFileSync(path.join(ex.dir, 'app.ts'), 'utf8');
    const wrong = source.split('\n').filter((l) => l.includes('// @ts-expect-error'));
    assert.ok(wrong.length >= 3);
    writeFileSync(path.join(ex.dir, 'app.ts'), source.replaceAll('// @ts-expect-error', '// unmarked'));
    assert.throws(() => tsc(args), /error TS/);
  } finally {
    ex.done();
  }
});

test('the generator refuses a bad manifest with a clear error', { timeout: 120000 }, () => {
  const bad = scratch('bad');
  try {
    writeFileSync(path.join(bad.dir, 'm.json'), '{"format":"longlink-manifest/9","messages":[]}');
    assert.throws(() => codegen(['--manifest', path.join(bad.dir, 'm.json'), '--lang', 'ts', '--out', bad.dir]), /format/);
    assert.throws(() => codegen(['--manifest', path.join(bad.dir, 'm.json'), '--lang', 'cobol', '--out', bad.dir]), /cobol|format/);
    assert.throws(() => codegen(['--lang', 'ts']), /usage/);
  } finally {
    bad.done();
  }
});
