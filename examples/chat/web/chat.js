// The demo chat page: log in, watch a room, send room and private messages.
// Served by longlink-chat at / (with /longlink.js, /manifest.json, /server.json and, with
// [chat] dev_tokens = true, /dev/token?uid=N).

import { Client, Manifest, defaultUrl } from './longlink.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
let client = null;
let room = 0;
let myUid = 0;
let timers = [];

function log(text, cls = 'notice', data = {}) {
  const li = document.createElement('li');
  li.className = cls;
  li.textContent = text;
  for (const [k, v] of Object.entries(data)) li.dataset[k] = String(v);
  $('log').append(li);
  $('log').scrollTop = $('log').scrollHeight;
}

function setStatus(text, cls = '') {
  $('status').textContent = text;
  $('status').className = cls;
}

function online(on) {
  $('watch').disabled = !on;
  $('send').disabled = !on;
  document.body.dataset.state = on ? 'online' : 'offline';
}

async function encoding() {
  const asked = params.get('encoding');
  if (asked) return asked;
  try {
    const res = await fetch('/server.json');
    if (res.ok) return (await res.json()).encoding || 'json';
  } catch { /* served elsewhere: json */ }
  return 'json';
}

async function token(uid) {
  const typed = $('token').value.trim();
  if (typed) return typed;
  const res = await fetch(`/dev/token?uid=${encodeURIComponent(uid)}`);
  if (!res.ok) {
    throw new Error(`no token: /dev/token answered ${res.status}; paste a token ` +
      '(longlink-chat token --uid N)');
  }
  return (await res.text()).trim();
}

function stop() {
  for (const t of timers) clearInterval(t);
  timers = [];
}

async function login() {
  const uid = Number($('uid').value);
  if (!Number.isInteger(uid) || uid < 1) { setStatus('uid must be 1 or more', 'bad'); return; }
  stop();
  if (client) client.close();
  client = null;
  online(false);
  setStatus('connecting…');
  try {
    const [enc, manifest, tok] = await Promise.all([encoding(), Manifest.load('/manifest.json'), token(uid)]);
    $('encoding').textContent = enc;
    const c = await Client.connect(params.get('ws') || defaultUrl(), { encoding: enc, manifest });
    client = c;
    c.on('S2C_UpdateWatchRoom', (m) => {
      room = m.room_id;
      $('watching').textContent = room ? String(room) : 'none';
      $('online').textContent = String(m.online);
    });
    c.on('S2C_Message', (m) => {
      const priv = m.to_uid !== 0;
      const where = priv ? `private ${m.from_uid} → ${m.to_uid}` : `room ${m.room_id}`;
      log(`[${where}] ${m.from_uid}: ${m.text}`, priv ? 'private msg' : 'room msg',
        { from: m.from_uid, to: m.to_uid, room: m.room_id, text: m.text });
    });
    c.on('S2C_Error', (m) => log(`refused (${m.code}): ${m.msg}`, 'error', { code: m.code }));
    c.on('S2C_Kick', (m) => log(`kicked: ${m.reason}`, 'error', { kick: m.reason }));
    c.on('error', ({ error }) => log(`bad payload: ${error.message}`, 'error'));
    c.on('close', ({ code }) => {
      if (client !== c) return;
      stop();
      online(false);
      setStatus(`disconnected (${code})`, 'bad');
    });
    c.send('C2S_UserLogin', { token: tok, login_plat: 0 });
    const reply = await c.next('S2C_UserLogin');
    if (reply.ret !== 1) throw new Error(`login refused: ${reply.msg}`);
    myUid = reply.uid;
    setStatus(`logged in as ${myUid}`, 'ok');
    online(true);
    log(`logged in as ${myUid} (${enc})`);
    // Heartbeat, and a fresh online count for the watched room (watching it again is a no-op).
    timers.push(setInterval(() => c.send('C2S_UserHeartBeat', { ptime: Math.floor(Date.now() / 1000) }), 20000));
    timers.push(setInterval(() => { if (room) c.send('C2S_UpdateWatchRoom', { room_id: room }); }, 5000));
  } catch (e) {
    setStatus(e.message, 'bad');
    if (client) client.close();
  }
}

function watch() {
  const id = Number($('room').value);
  if (!Number.isInteger(id) || id < 0) return;
  client.send('C2S_UpdateWatchRoom', { room_id: id });
}

function send() {
  const text = $('text').value;
  if (!text) return;
  const to = Number($('to').value) || 0;
  client.send('C2S_Message', { room_id: to ? 0 : room, to_uid: to, text });
  if (to) log(`[private ${myUid} → ${to}] ${myUid}: ${text}`, 'private sent', { to, text });
  $('text').value = '';
}

$('login').addEventListener('click', login);
$('watch').addEventListener('click', watch);
$('send').addEventListener('click', send);
$('text').addEventListener('keydown', (e) => { if (e.key === 'Enter') send(); });
online(false);
encoding().then((enc) => { $('encoding').textContent = enc; });
document.body.dataset.ready = 'true';
