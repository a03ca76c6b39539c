// The operators' live page (GET / on the admin address) in a real browser: Debian's Chromium
// driven by playwright-core. Run by tests/browser.rs while it keeps the chat server busy:
//
//   node admin.mjs http://127.0.0.1:PORT/ SCREENSHOT.png MIN_CONNECTIONS
//
// Checks that the page loads without a console error, a page error or a failed request,
// shows the figures (at least MIN_CONNECTIONS connections, messages per second above zero,
// the chat module's mailbox, this node), that they move (the messages received since start
// grow from one update to a later one), and that the charts are drawn; then takes a
// screenshot. Prints "admin ok" and the figures it read, and exits 0; exits 1 with the reason
// otherwise.

import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeModules = process.env.CHAT_TEST_NODE_MODULES || path.join(here, 'node_modules');
const { chromium } = createRequire(path.join(nodeModules, 'noop.js'))('playwright-core');

const [url, screenshot, minConnections = '1'] = process.argv.slice(2);
if (!url || !screenshot) {
  console.error('usage: node admin.mjs http://HOST:PORT/ SCREENSHOT.png [MIN_CONNECTIONS]');
  process.exit(2);
}
const executablePath = process.env.CHAT_TEST_CHROMIUM || '/usr/bin/chromium';
const TIMEOUT = 20000;
const problems = [];

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

/** The number a figure shows ("1.2k" included). */
function figure(text) {
  const m = /^(-?[\d.]+)([kMG]?)/.exec(text.trim());
  if (!m) return NaN;
  return Number(m[1]) * { '': 1, k: 1e3, M: 1e6, G: 1e9 }[m[2]];
}

const userDataDir = mkdtempSync(path.join(tmpdir(), 'longlink-chromium-admin-'));
let context;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    timeout: 60000,
    viewport: { width: 1400, height: 1000 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.url()}`);
  });
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]');
  const read = () => page.evaluate(() => {
    const t = (id) => document.getElementById(id).textContent;
    return {
      updates: Number(document.body.dataset.updates),
      connections: t('conn-total'), rateIn: t('rate-in'), rateOut: t('rate-out'),
      totalIn: t('total-in'), bytesIn: t('bytes-in'), p99: t('lat-p99'), live: t('live'),
      mailboxes: t('mailboxes'), nodes: t('nodes'), sessions: t('sessions'),
      byMessage: t('by-message'),
    };
  });
  await page.waitForFunction((min) => {
    const n = (id) => parseFloat(document.getElementById(id).textContent);
    return n('conn-total') >= min && n('rate-in') > 0 && n('rate-out') > 0;
  }, Number(minConnections));
  const first = await read();
  await page.waitForFunction((u) => Number(document.body.dataset.updates) >= u + 3, first.updates);
  const later = await read();
  check(later.live === 'live', `the page says ${later.live}`);
  check(figure(later.connections) >= Number(minConnections), `connections: ${later.connections}`);
  check(figure(later.totalIn) > figure(first.totalIn),
    `messages received grow: ${first.totalIn} then ${later.totalIn}`);
  check(later.p99 !== '–', `a latency: ${later.p99}`);
  check(later.mailboxes.includes('chat'), `the chat mailbox: ${later.mailboxes}`);
  check(later.nodes.includes('local'), `this node: ${later.nodes}`);
  check(later.byMessage.includes('C2S_Message'), `latency by message: ${later.byMessage}`);
  // Every chart has drawn lines in a series colour (not only the grid).
  const drawn = await page.evaluate(() => [...document.querySelectorAll('canvas')].map((c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let coloured = 0;
    for (let i = 0; i < d.length; i += 4) {
      const [r, g, b, a] = [d[i], d[i + 1], d[i + 2], d[i + 3]];
      if (a > 0 && Math.max(r, g, b) - Math.min(r, g, b) > 80) coloured++;
    }
    return [c.id, coloured];
  }));
  for (const [id, coloured] of drawn) {
    if (id !== 'chart-lat') check(coloured > 20, `${id} has lines (${coloured} coloured pixels)`);
  }
  await page.screenshot({ path: screenshot, fullPage: true });
  check(problems.length === 0, problems.join('; '));
  console.log('admin ok', JSON.stringify({ first, later, drawn }));
} catch (e) {
  console.log(`admin FAILED: ${e.message}`);
  for (const p of problems) console.log(`  ${p}`);
  process.exitCode = 1;
} finally {
  if (context) await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
