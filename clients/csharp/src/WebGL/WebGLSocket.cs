// The browser's WebSocket for Unity WebGL builds, through longlink.jslib. WebGL has no
// threads: this socket never blocks. A threadless Client (ClientOptions.Threadless, the
// default in WebGL builds) drives it from Poll(); a game may also use it alone, calling
// TryReceive from Update() until it returns null and encoding with WireCodec.
using System;
using System.Runtime.InteropServices;

namespace Longlink
{
    /// <summary>A browser WebSocket (WebGL builds): one binary message per payload, never blocking.</summary>
    public sealed class WebGLSocket : IPolledTransport
    {
        [DllImport("__Internal")] static extern int LonglinkWsOpen(string url);
        [DllImport("__Internal")] static extern int LonglinkWsState(int id);
        [DllImport("__Internal")] static extern int LonglinkWsCloseCode(int id);
        [DllImport("__Internal")] static extern int LonglinkWsSend(int id, byte[] data, int len);
        [DllImport("__Internal")] static extern int LonglinkWsNextLength(int id);
        [DllImport("__Internal")] static extern int LonglinkWsReceive(int id, byte[] data, int len);
        [DllImport("__Internal")] static extern void LonglinkWsClose(int id, int code);

        readonly int id;
        // Set once this side closes (the bridge forgets the socket then).
        string closedBy;

        /// <summary>Starts connecting to a <c>ws://</c> or <c>wss://</c> URL (see <see cref="IsOpen"/>).</summary>
        public WebGLSocket(string url) { id = LonglinkWsOpen(url); }

        /// <summary>Whether the socket is open.</summary>
        public bool IsOpen { get { return closedBy == null && LonglinkWsState(id) == 1; } }
        /// <summary>Whether the socket is closed (<see cref="CloseCode"/> says how).</summary>
        public bool IsClosed { get { return closedBy != null || LonglinkWsState(id) == 3; } }
        /// <summary>The close code once closed (1006: dropped).</summary>
        public int CloseCode { get { return LonglinkWsCloseCode(id); } }
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
        public bool Send(byte[] payload) { return closedBy == null && LonglinkWsSend(id, payload, payload.Length) == 1; }

        /// <summary>The next payload that arrived, or null.</summary>
        public byte[] TryReceive()
        {
            if (closedBy != null) return null;
            int n = LonglinkWsNextLength(id);
            if (n < 0) return null;
            var b = new byte[n];
            LonglinkWsReceive(id, b, n);
            return b;
        }

        /// <summary>Closes: code 1000 ends a resumable session for good; 4000 is a drop (the session waits for a resume).</summary>
        public void Close(int code = 1000)
        {
            if (closedBy != null) return;
            closedBy = code == 1000 ? "closed" : "dropped";
            LonglinkWsClose(id, code);
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
