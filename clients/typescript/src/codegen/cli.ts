#!/usr/bin/env node
// longlink-codegen: typed messages from a longlink manifest.
//
//   npx longlink-codegen --manifest FILE|URL --lang ts --out DIR [--runtime PACKAGE]
//   npx longlink-codegen --manifest FILE|URL --lang csharp --out DIR [--namespace NS]
//
// Writes DIR/<the language's file> (messages.ts for `ts`, Messages.cs for `csharp`, whose
// classes are in namespace NS, default `Messages`). `--runtime` names the package
// the generated code imports its reader and writer from (default `longlink-client`).
// A language is one module of this folder with `file` and `emit(model, source, runtime)`.

import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

import type { ManifestDoc } from '../manifest.js';
import { model } from './model.js';
import * as csharp from './csharp.js';
import * as ts from './ts.js';

/** The languages, by `--lang` name. */
const LANGUAGES: Record<string, { file: string; emit(m: ReturnType<typeof model>, source: string, runtime?: string): string }> = { ts, csharp };

const USAGE = 'usage: longlink-codegen --manifest FILE|URL --lang ts|csharp --out DIR [--runtime PACKAGE] [--namespace NS]';

function args(argv: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') throw new Error(USAGE);
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
    if (!m) throw new Error(`${a}?\n${USAGE}`);
    const value = m[2] ?? argv[++i];
    if (value === undefined) throw new Error(`--${m[1]} needs a value\n${USAGE}`);
    out[m[1]] = value;
  }
  for (const k of Object.keys(out)) if (!['manifest', 'lang', 'out', 'runtime', 'namespace'].includes(k)) throw new Error(`--${k}?\n${USAGE}`);
  return out;
}

async function load(source: string): Promise<ManifestDoc> {
  const text = /^https?:\/\//.test(source)
    ? await fetch(source).then((res) => {
      if (!res.ok) throw new Error(`${source}: HTTP ${res.status}`);
      return res.text();
    })
    : await readFile(source, 'utf8');
  const doc = JSON.parse(text) as ManifestDoc;
  if (!doc || !Array.isArray(doc.messages)) throw new Error(`${source}: not a longlink manifest`);
  if (!/^longlink-manifest\/[12]$/.test(String(doc.format))) throw new Error(`${source}: format ${String(doc.format)} is not one this generator reads`);
  return doc;
}

async function main(): Promise<void> {
  const a = args(process.argv.slice(2));
  if (!a.manifest || !a.out) throw new Error(USAGE);
  const lang = LANGUAGES[a.lang || 'ts'];
  if (!lang) throw new Error(`--lang ${a.lang}: one of ${Object.keys(LANGUAGES).join(', ')}`);
  const doc = await load(a.manifest);
  await mkdir(a.out, { recursive: true });
  const target = path.join(a.out, lang.file);
  await writeFile(target, lang.emit(model(doc), path.basename(a.manifest), a.lang === 'csharp' ? a.namespace : a.runtime));
  console.log(`wrote ${target}`);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
