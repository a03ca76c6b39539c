// The C# client's WebGL bridge (clients/csharp/src/WebGL/longlink.jslib) in headless
// Chromium against the real chat server. Unity's WebGL build links the .jslib into its
// Emscripten module; here a page provides the few parts of the Emscripten runtime it uses
// (HEAPU8, UTF8ToString, mergeInto, LibraryManager, autoAddDeps, and `$LL` as the global
// LL), loads the file as it is, and calls its functions as WebGLSocket.cs does: bytes in and
// out through the heap. Run by examples/chat/tests/csharp_client/main.rs:
//
//   node webgl.mjs ws://127.0.0.1:PORT/ TOKEN
//
// It starts a resumable session (JSON), logs in, watches a room, chats; drops the socket
// (close code 4000) and resumes on a new one (LL_Resume, LL_Resumed, the room message sent
// meanwhile by the server once); closes with 1000; and sees a refused connection closed
// with 1006. Prints "webgl ok" on success; exits 1 with the reason otherwise.
//
//   node webgl.mjs client PATH/ChatTests.exe ws=ws://… tcp=tcp://… token_a=… token_b=…
//
// runs the C# threadless Client over WebGLSocket over this .jslib: `mono ChatTests.exe
// webgl …` (clients/csharp/tests/WebGLClient.cs) writes each of WebGLSocket's bridge calls
// as a line, and this script makes the call in the page and answers with its result. The
// page drops the sockets at random moments while asked to ("cuts 1"). Prints "webgl client
// ok" on success.

import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeModules = process.env.CHAT_TEST_NODE_MODULES || path.join(here, '../browser/node_modules');
const { chromium } = createRequire(path.join(nodeModules, 'noop.js'))('playwright-core');
const jslib = readFileSync(path.join(here, '../../../../clients/csharp/src/WebGL/longlink.jslib'), 'utf8');

const [wsUrl, token, ...rest] = process.argv.slice(2);
const executablePath = process.env.CHAT_TEST_CHROMIUM || '/usr/bin/chromium';

// The Emscripten runtime's parts the .jslib uses, and a WebGLSocket in JS over the heap.
const RUNTIME = `
var HEAPU8 = new Uint8Array(1 << 20);
var heapTop = 8;
function malloc(n) { var p = heapTop; heapTop += n + 8; if (heapTop > HEAPU8.length) heapTop = 8, p = 8; return p; }
function UTF8ToString(ptr) { var end = ptr; while (HEAPU8[end]) end++; return new TextDecoder().decode(HEAPU8.subarray(ptr, end)); }
function stringToUTF8(s) { var b = new TextEncoder().encode(s); var p = malloc(b.length + 1); HEAPU8.set(b, p); HEAPU8[p + b.length] = 0; return p; }
var LibraryManager = { library: {} };
function mergeInto(target, source) { Object.assign(target, source); }
function autoAddDeps(lib, dep) { lib.__deps = (lib.__deps || []).concat([dep]); }
`;

const SOCKET = `
var L = LibraryManager.library;
var LL = L.$LL;
// What WebGLSocket.cs does, with the bytes through the heap.
function wsOpen(url) { return L.LonglinkWsOpen(stringToUTF8(url)); }
function wsSend(id, obj) {
  var b = new TextEncoder().encode(JSON.stringify(obj));
  var p = malloc(b.length); HEAPU8.set(b, p);
  return L.LonglinkWsSend(id, p, b.length);
}
function wsReceive(id) {
  var n = L.LonglinkWsNextLength(id);
  if (n < 0) return null;
  var p = malloc(n);
  if (L.LonglinkWsReceive(id, p, n) !== n) throw new Error('LonglinkWsReceive: a short copy');
  return JSON.parse(new TextDecoder().decode(HEAPU8.slice(p, p + n)));
}
async function until(f, what) {
  for (var i = 0; i < 1500; i++) { var v = f(); if (v) return v; await new Promise((r) => setTimeout(r, 10)); }
  throw new Error('timed out waiting for ' + what);
}
// The next message named name (others are kept in seen).
async function expect(id, name, seen) {
  return until(() => { for (var m; (m = wsReceive(id)) !== null; ) { seen.push(m); } var i = seen.findIndex((m) => m[name]); return i >= 0 ? seen.splice(i, 1)[0][name] : null; }, name);
}
`;

// The relay's side in the page: one bridge call per line; random drops while cutting.
const RELAY = `
var cutting = false;
function dropSome() {
  if (cutting) {
    for (var id in LL.sockets) {
      var s = LL.sockets[id];
      if (s.ws && s.ws.readyState === 1) s.ws.close(4000);
    }
  }
  setTimeout(dropSome, 150 + Math.random() * 600);
}
dropSome();
function b64(bytes) { var s = ''; for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]); return btoa(s); }
function unb64(text) { var s = atob(text); var b = new Uint8Array(s.length); for (var i = 0; i < s.length; i++) b[i] = s.charCodeAt(i); return b; }
function relay(line) {
  var w = line.split(' ');
  switch (w[0]) {
    case 'open': return String(L.LonglinkWsOpen(stringToUTF8(w[1])));
    case 'state': return String(L.LonglinkWsState(+w[1]));
    case 'code': return String(L.LonglinkWsCloseCode(+w[1]));
    case 'next': return String(L.LonglinkWsNextLength(+w[1]));
    case 'send': { var b = unb64(w[2] || ''); var p = malloc(b.length); HEAPU8.set(b, p); return String(L.LonglinkWsSend(+w[1], p, b.length)); }
    case 'recv': { var n = +w[2]; var p = malloc(n); var got = L.LonglinkWsReceive(+w[1], p, n); return b64(HEAPU8.slice(p, p + Math.max(0, Math.min(n, got)))); }
    case 'close': L.LonglinkWsClose(+w[1], +w[2]); return '0';
    case 'cuts': cutting = w[1] === '1'; return '0';
    default: throw new Error('relay: ' + line);
  }
}
`;

// Runs the C# program and relays its bridge calls to the page; resolves when it is done.
async function relayClient(page, exe, args) {
  const mono = spawn('mono', [exe, 'webgl', ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => mono.on('exit', (code) => resolve(code)));
  let done = false;
  for await (const line of createInterface({ input: mono.stdout })) {
    if (line === 'done') { done = true; continue; }
    const answer = await page.evaluate((l) => relay(l), line);
    mono.stdin.write(answer + '\n');
  }
  const code = await exited;
  if (code !== 0 || !done) throw new Error('mono ChatTests.exe webgl: exit ' + code);
}

async function scenario(url, token) {
  const seen = [];
  const room = 77;
  const a = wsOpen(url);
  if (L.LonglinkWsState(a) !== 0) throw new Error('connecting: state ' + L.LonglinkWsState(a));
  await until(() => L.LonglinkWsState(a) === 1, 'open');
  wsSend(a, { LL_SessionStart: {} });
  const session = await expect(a, 'LL_Session', seen);
  wsSend(a, { C2S_UserLogin: { token, login_plat: 0 } });
  const login = await expect(a, 'S2C_UserLogin', seen);
  if (login.ret !== 1) throw new Error('login: ' + JSON.stringify(login));
  wsSend(a, { C2S_UpdateWatchRoom: { room_id: room } });
  await expect(a, 'S2C_UpdateWatchRoom', seen);
  wsSend(a, { C2S_Message: { room_id: room, to_uid: 0, text: 'one' } });
  const one = await expect(a, 'S2C_Message', seen);
  if (one.text !== 'one') throw new Error('the room message: ' + JSON.stringify(one));
  // Numbered server messages so far: S2C_UserLogin, S2C_UpdateWatchRoom, S2C_Message.
  const handled = 3;
  // A message sent just before the drop may be lost on this socket: the resume brings it.
  wsSend(a, { C2S_Message: { room_id: room, to_uid: 0, text: 'two' } });
  L.LonglinkWsClose(a, 4000);
  if (L.LonglinkWsState(a) !== 3) throw new Error('a closed socket is forgotten: state 3');
  if (L.LonglinkWsSend(a, 0, 0) !== 0) throw new Error('send on a closed socket: 0');

  // A new socket, LL_Resume first (again on LL_ResumeRefused{"retry"}: the old socket's end
  // may still be on its way to the server).
  let b, resumed;
  for (let attempt = 0; !resumed; attempt++) {
    if (attempt >= 5) throw new Error('no LL_Resumed in 5 attempts');
    b = wsOpen(url);
    await until(() => L.LonglinkWsState(b) === 1, 'open again');
    wsSend(b, { LL_Resume: { token: session.token, last_seq: handled } });
    const m = await until(() => wsReceive(b), 'LL_Resumed or LL_ResumeRefused');
    if (m.LL_Resumed) resumed = m.LL_Resumed;
    else if (m.LL_ResumeRefused && m.LL_ResumeRefused.reason === 'retry') L.LonglinkWsClose(b, 4000);
    else throw new Error('not resumed: ' + JSON.stringify(m));
  }
  // Client messages: the login 1, the watch 2, "one" 3, "two" 4.
  if (resumed.last_seq !== 3 && resumed.last_seq !== 4) throw new Error('LL_Resumed.last_seq: ' + resumed.last_seq);
  // The client resends what the server had not handled; "two" is its 2nd message after login.
  if (resumed.last_seq === 3) wsSend(b, { C2S_Message: { room_id: room, to_uid: 0, text: 'two' } });
  const two = await expect(b, 'S2C_Message', seen);
  if (two.text !== 'two') throw new Error('after the resume: ' + JSON.stringify(two));
  wsSend(b, { C2S_Message: { room_id: room, to_uid: 0, text: 'three' } });
  const three = await expect(b, 'S2C_Message', seen);
  if (three.text !== 'three') throw new Error('"two" came twice: ' + JSON.stringify(three));
  L.LonglinkWsClose(b, 1000);

  const dead = wsOpen('ws://127.0.0.1:1/');
  await until(() => L.LonglinkWsState(dead) === 3, 'a refused connection closed');
  if (L.LonglinkWsCloseCode(dead) !== 1006) throw new Error('close code ' + L.LonglinkWsCloseCode(dead));
  L.LonglinkWsClose(dead, 1000);
  return 'resumed at ' + resumed.last_seq;
}

const userDataDir = mkdtempSync(path.join(tmpdir(), 'longlink-webgl-'));
let context;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    timeout: 60000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.setContent('<html><body></body></html>');
  await page.addScriptTag({ content: RUNTIME });
  await page.addScriptTag({ content: jslib });
  await page.addScriptTag({ content: SOCKET + scenario.toString() });
  if (wsUrl === 'client') {
    await page.addScriptTag({ content: RELAY });
    await relayClient(page, token, rest);
    if (errors.length > 0) throw new Error('page errors: ' + errors.join('; '));
    console.log('webgl client ok');
  } else {
    const said = await page.evaluate(([u, t]) => scenario(u, t), [wsUrl, token]);
    if (errors.length > 0) throw new Error('page errors: ' + errors.join('; '));
    console.log('webgl: the .jslib opened, sent, received, dropped and resumed (' + said + '), closed');
    console.log('webgl ok');
  }
} catch (e) {
  console.log('webgl failed: ' + (e && e.stack || e));
  process.exitCode = 1;
} finally {
  if (context) await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
