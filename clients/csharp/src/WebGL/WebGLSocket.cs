// The browser's WebSocket for Unity WebGL builds, through longlink.jslib. WebGL has no
// threads: this socket never blocks. A threadless Client (ClientOptions.Threadless, the
// default in WebGL builds) drives it from Poll(); a game may also use it alone, calling
// TryReceive from Update() until it returns null and encoding with WireCodec.
using System;
using System.Runtime.InteropServices;

namespace Longlink
{
    /// <summary>The browser's side of <see cref="WebGLSocket"/>: longlink.jslib's functions.</summary>
    public interface IBrowserWebSockets
    {
        /// <summary>Opens a socket to the URL; returns its id.</summary>
        int Open(string url);
        /// <summary>0 connecting, 1 open, 3 closed.</summary>
        int State(int id);
        /// <summary>The close code once closed.</summary>
        int CloseCode(int id);
        /// <summary>Sends <paramref name="len"/> bytes as one binary message; 0 if not open.</summary>
        int Send(int id, byte[] data, int len);
        /// <summary>The next message's length, or -1.</summary>
        int NextLength(int id);
        /// <summary>Copies the next message into <paramref name="data"/> and drops it; returns its length.</summary>
        int Receive(int id, byte[] data, int len);
        /// <summary>Closes with the code and forgets the socket.</summary>
        void Close(int id, int code);
    }

    /// <summary>A browser WebSocket (WebGL builds): one binary message per payload, never blocking.</summary>
    public sealed class WebGLSocket : IPolledTransport
    {
        /// <summary>longlink.jslib, linked into a WebGL build.</summary>
        sealed class JsLib : IBrowserWebSockets
        {
            [DllImport("__Internal")] static extern int LonglinkWsOpen(string url);
            [DllImport("__Internal")] static extern int LonglinkWsState(int id);
            [DllImport("__Internal")] static extern int LonglinkWsCloseCode(int id);
            [DllImport("__Internal")] static extern int LonglinkWsSend(int id, byte[] data, int len);
            [DllImport("__Internal")] static extern int LonglinkWsNextLength(int id);
            [DllImport("__Internal")] static extern int LonglinkWsReceive(int id, byte[] data, int len);
            [DllImport("__Internal")] static extern void LonglinkWsClose(int id, int code);

            public int Open(string url) { return LonglinkWsOpen(url); }
            public int State(int id) { return LonglinkWsState(id); }
            public int CloseCode(int id) { return LonglinkWsCloseCode(id); }
            public int Send(int id, byte[] data, int len) { return LonglinkWsSend(id, data, len); }
            public int NextLength(int id) { return LonglinkWsNextLength(id); }
            public int Receive(int id, byte[] data, int len) { return LonglinkWsReceive(id, data, len); }
            public void Close(int id, int code) { LonglinkWsClose(id, code); }
        }

        /// <summary>The bridge a WebGL build links: longlink.jslib.</summary>
        public static readonly IBrowserWebSockets Browser = new JsLib();

        readonly IBrowserWebSockets js;
        readonly int id;
        // Set once this side closes (the bridge forgets the socket then).
        string closedBy;

        /// <summary>Starts connecting to a <c>ws://</c> or <c>wss://</c> URL (see <see cref="IsOpen"/>).</summary>
        public WebGLSocket(string url) : this(url, Browser) { }

        /// <summary>As <see cref="WebGLSocket(string)"/>, through another bridge to the browser (the tests relay the calls to a browser page).</summary>
        public WebGLSocket(string url, IBrowserWebSockets browser)
        {
            js = browser;
            id = js.Open(url);
        }

        /// <summary>Whether the socket is open.</summary>
        public bool IsOpen { get { return closedBy == null && js.State(id) == 1; } }
        /// <summary>Whether the socket is closed (<see cref="CloseCode"/> says how).</summary>
        public bool IsClosed { get { return closedBy != null || js.State(id) == 3; } }
        /// <summary>The close code once closed (1006: dropped).</summary>
        public int CloseCode { get { return js.CloseCode(id); } }
        /// <summary>Why it closed.</summary>
        public string Cause
        {
            get
            {
                if (closedBy != null) return closedBy;
                int code = CloseCode;
                return code == 1000 ? "end of stream" : "websocket closed: " + code;
            }
        }

        /// <summary>Sends a payload; false if the socket is not open.</summary>
        public bool Send(byte[] payload) { return closedBy == null && js.Send(id, payload, payload.Length) == 1; }

        /// <summary>The next payload that arrived, or null.</summary>
        public byte[] TryReceive()
        {
            if (closedBy != null) return null;
            int n = js.NextLength(id);
            if (n < 0) return null;
            var b = new byte[n];
            js.Receive(id, b, n);
            return b;
        }

        /// <summary>Closes: code 1000 ends a resumable session for good; 4000 is a drop (the session waits for a resume).</summary>
        public void Close(int code = 1000)
        {
            if (closedBy != null) return;
            closedBy = code == 1000 ? "closed" : "dropped";
            js.Close(id, code);
        }

        void IPolledTransport.Update() { }

        bool IPolledTransport.TrySend(byte[] payload)
        {
            if (IsClosed) return true;
            return IsOpen && Send(payload);
        }

        void IPolledTransport.Drop(string cause)
        {
            if (closedBy != null) return;
            Close(4000);
            closedBy = cause;
        }

        void ITransport.Close(bool goodbye) { Close(goodbye ? 1000 : 4000); }
    }
}
