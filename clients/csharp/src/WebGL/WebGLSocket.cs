// The browser's WebSocket for Unity WebGL builds, through longlink.jslib. WebGL has no
// threads: this socket never blocks; the game drives it from Update() (TryReceive until it
// returns null) and encodes and decodes with WireCodec. It is the transport alone: Client,
// whose network runs on threads, is not available in WebGL builds (see the README).
using System;
using System.Runtime.InteropServices;

namespace Longlink
{
    /// <summary>A browser WebSocket (WebGL builds): one binary message per payload, never blocking.</summary>
    public sealed class WebGLSocket
    {
        [DllImport("__Internal")] static extern int LonglinkWsOpen(string url);
        [DllImport("__Internal")] static extern int LonglinkWsState(int id);
        [DllImport("__Internal")] static extern int LonglinkWsCloseCode(int id);
        [DllImport("__Internal")] static extern int LonglinkWsSend(int id, byte[] data, int len);
        [DllImport("__Internal")] static extern int LonglinkWsNextLength(int id);
        [DllImport("__Internal")] static extern int LonglinkWsReceive(int id, byte[] data, int len);
        [DllImport("__Internal")] static extern void LonglinkWsClose(int id, int code);

        readonly int id;

        /// <summary>Starts connecting to a <c>ws://</c> or <c>wss://</c> URL (see <see cref="IsOpen"/>).</summary>
        public WebGLSocket(string url) { id = LonglinkWsOpen(url); }

        /// <summary>Whether the socket is open.</summary>
        public bool IsOpen { get { return LonglinkWsState(id) == 1; } }
        /// <summary>Whether the socket is closed (<see cref="CloseCode"/> says how).</summary>
        public bool IsClosed { get { return LonglinkWsState(id) == 3; } }
        /// <summary>The close code once closed (1006: dropped).</summary>
        public int CloseCode { get { return LonglinkWsCloseCode(id); } }

        /// <summary>Sends a payload; false if the socket is not open.</summary>
        public bool Send(byte[] payload) { return LonglinkWsSend(id, payload, payload.Length) == 1; }

        /// <summary>The next payload that arrived, or null.</summary>
        public byte[] TryReceive()
        {
            int n = LonglinkWsNextLength(id);
            if (n < 0) return null;
            var b = new byte[n];
            LonglinkWsReceive(id, b, n);
            return b;
        }

        /// <summary>Closes: code 1000 ends a resumable session for good.</summary>
        public void Close(int code = 1000) { LonglinkWsClose(id, code); }
    }
}
