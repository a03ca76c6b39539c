// The WebGL bridge: Unity's WebGL builds have no sockets and no threads, so a WebGL build
// reaches the browser's WebSocket through these functions (WebGLSocket.cs calls them). Each
// socket keeps what arrives in a queue that the game drains from Update().
var LonglinkWebSocket = {
  $LL: { sockets: {}, next: 1 },

  // Opens a socket to the URL (a UTF-8 C string); returns its id.
  LonglinkWsOpen: function (urlPtr) {
    var id = LL.next++;
    var s = { ws: null, inbox: [], state: 0, code: 0 };
    LL.sockets[id] = s;
    try {
      s.ws = new WebSocket(UTF8ToString(urlPtr));
    } catch (e) {
      s.state = 3;
      s.code = 1006;
      return id;
    }
    s.ws.binaryType = 'arraybuffer';
    s.ws.onopen = function () { s.state = 1; };
    s.ws.onmessage = function (e) {
      s.inbox.push(typeof e.data === 'string' ? new TextEncoder().encode(e.data) : new Uint8Array(e.data));
    };
    s.ws.onclose = function (e) { s.state = 3; s.code = e.code; };
    s.ws.onerror = function () {};
    return id;
  },

  // 0 connecting, 1 open, 3 closed (then LonglinkWsCloseCode says how).
  LonglinkWsState: function (id) {
    var s = LL.sockets[id];
    return s ? s.state : 3;
  },

  LonglinkWsCloseCode: function (id) {
    var s = LL.sockets[id];
    return s ? s.code : 1006;
  },

  // Sends len bytes at ptr as one binary message; 0 if the socket is not open.
  LonglinkWsSend: function (id, ptr, len) {
    var s = LL.sockets[id];
    if (!s || s.state !== 1) return 0;
    s.ws.send(HEAPU8.slice(ptr, ptr + len));
    return 1;
  },

  // The length of the next message that arrived, or -1 if none.
  LonglinkWsNextLength: function (id) {
    var s = LL.sockets[id];
    return s && s.inbox.length > 0 ? s.inbox[0].length : -1;
  },

  // Copies the next message into the len bytes at ptr and drops it; returns its length.
  LonglinkWsReceive: function (id, ptr, len) {
    var s = LL.sockets[id];
    if (!s || s.inbox.length === 0) return -1;
    var m = s.inbox.shift();
    HEAPU8.set(m.subarray(0, Math.min(len, m.length)), ptr);
    return m.length;
  },

  // Closes with the code (1000: the session ends; 4000: a drop) and forgets the socket.
  LonglinkWsClose: function (id, code) {
    var s = LL.sockets[id];
    if (!s) return;
    try { if (s.ws) s.ws.close(code); } catch (e) {}
    delete LL.sockets[id];
  }
};

autoAddDeps(LonglinkWebSocket, '$LL');
mergeInto(LibraryManager.library, LonglinkWebSocket);
