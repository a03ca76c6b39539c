// Shared by the tests: the package's build, running the generator and tsc, and temp dirs.

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const PACKAGE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TSC = path.join(PACKAGE, 'node_modules/typescript/bin/tsc');

/** Runs `node args...` in `cwd`; its output (throws with stderr on failure). */
export function node(args, cwd = PACKAGE) {
  return execFileSync(process.execPath, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** tsc with `args` (throws with its output on a type error). */
export function tsc(args, cwd = PACKAGE) {
  try {
    return node([TSC, ...args], cwd);
  } catch (e) {
    throw new Error(`tsc ${args.join(' ')}:\n${e.stdout}${e.stderr}`);
  }
}

/** `longlink-codegen` of the build. */
export function codegen(args) {
  return node([path.join(PACKAGE, 'dist/codegen/cli.js'), ...args]);
}

/** A fresh directory where `longlink-client` resolves to this package (a node_modules link), removed by `done()`. */
export function scratch(name) {
  const dir = mkdtempSync(path.join(tmpdir(), `longlink-${name}-`));
  mkdirSync(path.join(dir, 'node_modules'));
  symlinkSync(PACKAGE, path.join(dir, 'node_modules', 'longlink-client'), 'dir');
  writeFileSync(path.join(dir, 'package.json'), '{"type":"module","private":true}\n');
  return { dir, done: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A fresh directory outside the package. */
export function outside(name) {
  const dir = mkdtempSync(path.join(tmpdir(), `longlink-${name}-`));
  return { dir, done: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Compiles a generated messages.ts in `dir` to messages.js beside it. */
export function compileGenerated(dir) {
  tsc(['--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2020', '--strict',
    '--skipLibCheck', '--declaration', 'false', '--outDir', dir, path.join(dir, 'messages.ts')]);
}

export const hex = (bytes) => Buffer.from(bytes).toString('hex');
export const unhex = (s) => Uint8Array.from(Buffer.from(s, 'hex'));
