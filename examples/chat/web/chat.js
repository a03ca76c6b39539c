// The demo chat page: log in, watch a room, send room and private messages.
// Served by longlink-chat at / (with /longlink-client/*.js: the npm package longlink-client
// of clients/typescript, built into the binary; /manifest.json, /server.json and, with
// [chat] dev_tokens = true, /dev/token?uid=N).
//
// The session is resumable (the server's [gate] resume_window): when the connection drops
// the page says "reconnecting…", the client reconnects and resumes, and the room goes on
// with nothing missed or doubled. If the session cannot be resumed (the window passed, the
// server restarted), the page logs in again with its token and watches its room again.
// ?resume=0 turns it off (a leaf-style client: a drop is a disconnect).
//
// Keys pressed in the message box send C2S_Typing (at most one every 2 s); the room's other
// watchers show "… is typing" for 3 s (S2C_Typing, volatile: it reaches only pages that keep
// up, and a resumed session does not count it). The online count follows S2C_RoomInfo (latest
// per room: a page that was behind gets the current count once).

import { Client, Manifest, defaultUrl } from './longlink-client/index.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
let client = null;
let room = 0;
let myUid = 0;
let timers = [];
let typingSent = 0; // when this page last said it was typing (ms)
const typists = new Map(); // uid -> timer that clears its "… is typing"

/** Shows who is typing in the watched room. */
function showTyping() {
  const who = [...typists.keys()];
  $('typing').textContent = who.length === 0 ? ''
    : `${who.join(', ')} ${who.length === 1 ? 'is' : 'are'} typing…`;
}

function typing(uid) {
  clearTimeout(typists.get(uid));
  typists.set(uid, setTimeout(() => { typists.delete(uid); showTyping(); }, 3000));
  showTyping();
}

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
    let resume = params.get('resume') !== '0';
    const url = params.get('ws') || defaultUrl();
    const c = await Client.connect(url, { encoding: enc, manifest, resume }).catch((e) => {
      if (e.name !== 'ResumeUnavailableError') throw e;
      // A server without [gate] resume_window: a plain connection (a drop is a disconnect).
      log('this server does not resume sessions: a dropped connection will not come back');
      resume = false;
      return Client.connect(url, { encoding: enc, manifest });
    });
    client = c;
    // Tests reach the page's client here (e.g. to drop its socket).
    window.chatClient = c;
    let relogin = null; // the reason, while logging in again after a lost session
    let rewatch = false; // watching the room again after such a login
    c.on('S2C_UpdateWatchRoom', (m) => {
      room = m.room_id;
      $('watching').textContent = room ? String(room) : 'none';
      $('online').textContent = String(m.online);
      if (rewatch) {
        rewatch = false;
        log(`watching room ${room} again`);
      }
    });
    c.on('S2C_RoomInfo', (m) => {
      if (m.room_id === room) $('online').textContent = String(m.online);
    });
    c.on('S2C_Typing', (m) => {
      if (m.room_id === room && m.uid !== myUid) typing(m.uid);
    });
    c.on('S2C_Message', (m) => {
      if (m.room_id === room && typists.has(m.from_uid)) {
        clearTimeout(typists.get(m.from_uid));
        typists.delete(m.from_uid);
        showTyping();
      }
      const priv = m.to_uid !== 0;
      const where = priv ? `private ${m.from_uid} → ${m.to_uid}` : `room ${m.room_id}`;
      log(`[${where}] ${m.from_uid}: ${m.text}`, priv ? 'private msg' : 'room msg',
        { from: m.from_uid, to: m.to_uid, room: m.room_id, text: m.text });
    });
    c.on('S2C_Error', (m) => log(`refused (${m.code}): ${m.msg}`, 'error', { code: m.code }));
    c.on('S2C_Kick', (m) => {
      if (m.reason === 'shutdown' && resume) {
        // The server is stopping (or restarting): keep reconnecting; once it is back the old
        // session is gone and the page logs in again.
        log(`server shutting down: reconnecting…`);
        return;
      }
      log(`kicked: ${m.reason}`, 'error', { kick: m.reason });
      // Kicked (logged in elsewhere, by an operator, too fast): do not come back by ourselves.
      if (client === c) c.close();
    });
    c.on('error', ({ error }) => log(`bad payload: ${error.message}`, 'error'));
    c.on('close', ({ code }) => {
      if (client !== c) return;
      stop();
      online(false);
      setStatus(`disconnected (${code})`, 'bad');
    });
    c.on('reconnecting', ({ attempt, code }) => {
      if (client !== c) return;
      if (attempt === 1) log(`connection lost (${code}): reconnecting…`);
      setStatus('reconnecting…', 'warn');
      document.body.dataset.state = 'reconnecting';
    });
    c.on('moving', ({ afterMs }) => {
      if (client !== c) return;
      // The server is stopping (a rolling deploy): the client reconnects elsewhere and
      // resumes there by itself; nothing is lost.
      log(`the server asked us to move: moving in ${afterMs} ms…`);
      setStatus('moving…', 'warn');
    });
    c.on('resumed', ({ attempts, resent }) => {
      if (client !== c) return;
      setStatus(`logged in as ${myUid}`, 'ok');
      document.body.dataset.state = 'online';
      log(`reconnected: session resumed after ${attempts} attempt${attempts === 1 ? '' : 's'}` +
        (resent ? `, ${resent} message${resent === 1 ? '' : 's'} sent again` : '') + '; nothing missed');
    });
    c.on('sessionLost', ({ reason }) => {
      if (client !== c) return;
      // Everything the server knew of us is gone: log in again (sent now, or as soon as the
      // connection is back) and watch the room again once in.
      relogin = reason;
      log(`session lost (${reason}): logging in again`);
      setStatus('logging in again…', 'warn');
      c.send('C2S_UserLogin', { token: tok, login_plat: 0 });
    });
    c.on('S2C_UserLogin', (reply) => {
      if (client !== c || relogin === null) return;
      const reason = relogin;
      relogin = null;
      if (reply.ret !== 1) {
        setStatus(`login refused: ${reply.msg}`, 'bad');
        return;
      }
      setStatus(`logged in as ${myUid}`, 'ok');
      document.body.dataset.state = 'online';
      log(`logged in again as ${reply.uid} after the session was lost (${reason})`);
      if (room) {
        rewatch = true;
        c.send('C2S_UpdateWatchRoom', { room_id: room });
      }
    });
    c.send('C2S_UserLogin', { token: tok, login_plat: 0 });
    const reply = await c.next('S2C_UserLogin');
    if (reply.ret !== 1) throw new Error(`login refused: ${reply.msg}`);
    myUid = reply.uid;
    setStatus(`logged in as ${myUid}`, 'ok');
    online(true);
    log(`logged in as ${myUid} (${enc}${resume ? ', resumable' : ''})`);
    // Heartbeat, and a fresh online count for the watched room (watching it again is a no-op);
    // not while reconnecting (what is sent then waits for the resume) or logging in again.
    const up = () => c.state === 'open' && relogin === null;
    timers.push(setInterval(() => { if (up()) c.send('C2S_UserHeartBeat', { ptime: Math.floor(Date.now() / 1000) }); }, 20000));
    timers.push(setInterval(() => { if (room && up()) c.send('C2S_UpdateWatchRoom', { room_id: room }); }, 5000));
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
$('text').addEventListener('keydown', (e) => {
  if (e.key === 'Enter') { send(); return; }
  // A key typed in a watched room: say so, at most every 2 s.
  const now = Date.now();
  if (client && room && !$('to').value.trim().replace(/^0$/, '') && now - typingSent > 2000) {
    typingSent = now;
    client.send('C2S_Typing', { room_id: room });
  }
});
online(false);
encoding().then((enc) => { $('encoding').textContent = enc; });
document.body.dataset.ready = 'true';
