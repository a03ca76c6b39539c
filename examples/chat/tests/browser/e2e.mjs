// End-to-end test of the chat demo page in a real browser: Debian's Chromium driven by
// playwright-core (no browser download). Run by tests/browser.rs:
//
//   node e2e.mjs ws://127.0.0.1:PORT/ [json|protobuf]
//
// Two pages, logged in as two users through /dev/token, watch the same room, see each
// other's room messages and a private message. Then A's socket drops (the client's
// dropConnection, from inside the page, with the network down for a while) while B talks and
// A types: A shows "reconnecting…", resumes its session, and then has every room message
// exactly once and in order (the same list as B's). Last, a session that cannot be resumed
// (A's token forged before a drop: the server refuses it) ends in a new login and A is back
// in the room. The page at http://127.0.0.1:PORT/ is served
// by the chat server itself; the second argument is passed as ?encoding= and must match the
// server's. Environment: CHAT_TEST_CHROMIUM (default /usr/bin/chromium),
// CHAT_TEST_NODE_MODULES (default ./node_modules beside this file).
// Prints "e2e ok" and exits 0 on success; exits 1 with the reason otherwise.

import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeModules = process.env.CHAT_TEST_NODE_MODULES || path.join(here, 'node_modules');
const { chromium } = createRequire(path.join(nodeModules, 'noop.js'))('playwright-core');

const [wsUrl, encoding = 'json'] = process.argv.slice(2);
if (!wsUrl || !/^wss?:\/\//.test(wsUrl)) {
  console.error('usage: node e2e.mjs ws://HOST:PORT/ [json|protobuf]');
  process.exit(2);
}
const base = wsUrl.replace(/^ws/, 'http').replace(/\/*$/, '');
const executablePath = process.env.CHAT_TEST_CHROMIUM || '/usr/bin/chromium';
const TIMEOUT = 15000;
const ROOM = 7;
const [A, B] = [101, 102];

const userDataDir = mkdtempSync(path.join(tmpdir(), 'longlink-chromium-'));
let context;
const problems = [];

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

async function openAs(uid) {
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on('pageerror', (e) => problems.push(`uid ${uid} page error: ${e.message}`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`uid ${uid}: HTTP ${r.status()} for ${r.url()}`);
  });
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`uid ${uid} console error: ${m.text()}`);
  });
  await page.goto(`${base}/?encoding=${encoding}`);
  await page.waitForSelector('body[data-ready="true"]');
  await page.fill('#uid', String(uid));
  await page.click('#login');
  await page.waitForFunction(
    (u) => document.getElementById('status').textContent === `logged in as ${u}`,
    uid,
  );
  return page;
}

async function watch(page, room) {
  await page.fill('#room', String(room));
  await page.click('#watch');
  await page.waitForFunction(
    (r) => document.getElementById('watching').textContent === String(r),
    room,
  );
}

async function say(page, text, to = 0) {
  await page.fill('#to', String(to));
  await page.fill('#text', text);
  await page.click('#send');
}

/** Waits for a received message on `page` matching class, sender and text. */
async function seen(page, cls, from, text) {
  await page.waitForFunction(
    ([c, f, t]) => [...document.querySelectorAll(`#log li.${c}.msg`)]
      .some((li) => li.dataset.from === String(f) && li.dataset.text === t),
    [cls, from, text],
  );
}

/** The room messages on `page`, in the order shown: "from: text". */
async function roomLog(page) {
  return page.$$eval('#log li.room.msg', (lis) => lis.map((li) => `${li.dataset.from}: ${li.dataset.text}`));
}

async function statusIs(page, text) {
  await page.waitForFunction((t) => document.getElementById('status').textContent === t, text);
}

/** Waits for a notice on `page` that contains `text`. */
async function notice(page, text) {
  await page.waitForFunction(
    (t) => [...document.querySelectorAll('#log li.notice')].some((li) => li.textContent.includes(t)),
    text,
  );
}

async function logOf(page) {
  return page.$$eval('#log li', (lis) => lis.map((li) => `${li.className}: ${li.textContent}`));
}

let pages = [];
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    timeout: 60000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const a = await openAs(A);
  const b = await openAs(B);
  pages = [a, b];
  const enc = await a.textContent('#encoding');
  check(enc === encoding, `page encoding ${enc} is ${encoding}`);

  await watch(a, ROOM);
  await watch(b, ROOM);
  const online = await b.textContent('#online');
  check(online === '2', `B sees 2 online after both watched (saw ${online})`);

  const hello = `hello from ${A} (${encoding})`;
  await say(a, hello);
  await seen(b, 'room', A, hello);
  await seen(a, 'room', A, hello); // the sender of a room message gets it too

  const reply = `hi ${A}, ${B} here: ünïcødé ✓`;
  await say(b, reply);
  await seen(a, 'room', B, reply);

  const secret = `psst ${B}, only you`;
  await say(a, secret, B);
  await seen(b, 'private', A, secret);
  const leaked = await b.$$eval('#log li.private.msg', (lis) => lis.map((li) => li.dataset.to));
  check(leaked.every((to) => to === String(B)), `private messages on B are to B (${leaked})`);

  // A's socket drops, and the network stays down for a while: A shows "reconnecting…".
  await a.evaluate(() => window.chatClient.dropConnection({ offlineMs: 2500 }));
  await statusIs(a, 'reconnecting…');
  await notice(a, 'reconnecting…');
  // Meanwhile B talks (the server keeps it for A) and A types (A's page keeps it).
  const away = [1, 2, 3, 4, 5].map((i) => `while ${A} is away #${i} (${encoding})`);
  for (const t of away) await say(b, t);
  await seen(b, 'room', B, away[away.length - 1]);
  const typed = `typed by ${A} while reconnecting`;
  await say(a, typed);
  const stillAway = await a.textContent('#status');
  check(stillAway === 'reconnecting…', `A still reconnecting while B talked (${stillAway})`);
  // A resumes: B's messages replayed, A's own sent, nothing twice.
  await statusIs(a, `logged in as ${A}`);
  await notice(a, 'session resumed');
  await seen(a, 'room', B, away[away.length - 1]);
  await seen(b, 'room', A, typed);
  await seen(a, 'room', A, typed);
  const [logA, logB] = [await roomLog(a), await roomLog(b)];
  check(JSON.stringify(logA) === JSON.stringify(logB),
    `A's room messages are B's, in the same order\nA: ${logA.join(' | ')}\nB: ${logB.join(' | ')}`);
  for (const t of [...away, typed]) {
    const n = logA.filter((line) => line.endsWith(`: ${t}`)).length;
    check(n === 1, `A shows "${t}" once (${n} times)`);
  }

  // A session that cannot be resumed (a forged token: refused) ends in a new login.
  await a.evaluate(() => {
    window.chatClient.session.token = 'forged';
    window.chatClient.dropConnection();
  });
  await notice(a, 'session lost (unknown): logging in again');
  await notice(a, `logged in again as ${A} after the session was lost (unknown)`);
  await notice(a, `watching room ${ROOM} again`);
  await statusIs(a, `logged in as ${A}`);
  const back = `${A} is back after a new login (${encoding})`;
  await say(b, back);
  await seen(a, 'room', B, back);
  await say(a, `${back}, says ${A}`);
  await seen(b, 'room', A, `${back}, says ${A}`);

  for (const [name, page] of [['A', a], ['B', b]]) {
    const errors = await page.$$eval('#log li.error', (lis) => lis.map((li) => li.textContent));
    check(errors.length === 0, `no refusals on ${name}: ${errors.join('; ')}`);
  }
  check(problems.length === 0, problems.join('\n'));
  console.log(`e2e ok (${encoding}): two pages logged in, watched room ${ROOM}, ` +
    'exchanged room messages and a private message; A dropped, showed "reconnecting…" and ' +
    `resumed with all ${logA.length} room messages once, in order; a lost session logged in again`);
} catch (e) {
  console.error(`e2e failed (${encoding}): ${e.message}`);
  for (const p of problems) console.error(p);
  for (const [i, page] of pages.entries()) {
    try {
      console.error(`page ${i ? 'B' : 'A'} status: ${await page.textContent('#status')}`);
      for (const line of await logOf(page)) console.error(`  ${line}`);
    } catch { /* page gone */ }
  }
  process.exitCode = 1;
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}
