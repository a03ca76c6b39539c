// TCP for threadless clients outside WebGL: a non-blocking socket with leaf's length
// prefix. Update() finishes the connect, writes what is pending and reads what arrived,
// each as far as the socket allows without waiting. Plain TCP only (TLS needs a blocking
// or asynchronous stream).
using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;

namespace Longlink
{
    /// <summary>A non-blocking TCP connection with leaf's length prefix.</summary>
    public sealed class PolledTcpTransport : IPolledTransport
    {
        readonly Socket socket;
        readonly int lenMsgLen;
        readonly bool littleEndian;
        readonly Queue<byte[]> frames = new Queue<byte[]>();
        byte[] inBuf = new byte[64 * 1024];
        int inLen;
        // The frame being written and how much of it is out.
        byte[] outFrame;
        int outAt;
        bool open, closed;
        string cause = "";

        PolledTcpTransport(Socket socket, ClientOptions o)
        {
            this.socket = socket;
            lenMsgLen = o.LenMsgLen;
            littleEndian = o.LittleEndian;
        }

        /// <summary>Starts connecting to <paramref name="uri"/> (a host name is resolved first, blocking).</summary>
        internal static PolledTcpTransport Open(Uri uri, ClientOptions o)
        {
            if (o.LenMsgLen != 1 && o.LenMsgLen != 2 && o.LenMsgLen != 4) throw new ArgumentException("LenMsgLen is 1, 2 or 4");
            IPAddress ip;
            if (!IPAddress.TryParse(uri.Host, out ip)) ip = Dns.GetHostAddresses(uri.Host)[0];
            var s = new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { Blocking = false, NoDelay = true };
            var t = new PolledTcpTransport(s, o);
            try
            {
                s.Connect(new IPEndPoint(ip, uri.Port));
                t.open = true;
            }
            catch (SocketException e)
            {
                if (e.SocketErrorCode != SocketError.WouldBlock && e.SocketErrorCode != SocketError.InProgress) t.Drop("cannot connect to " + uri + ": " + e.Message);
            }
            return t;
        }

        /// <inheritdoc/>
        public bool IsOpen { get { return open && !closed; } }
        /// <inheritdoc/>
        public bool IsClosed { get { return closed; } }
        /// <inheritdoc/>
        public string Cause { get { return cause; } }

        /// <inheritdoc/>
        public void Update()
        {
            if (closed) return;
            try
            {
                if (!open)
                {
                    if (socket.Poll(0, SelectMode.SelectError)) { Drop("cannot connect: " + (SocketError)(int)socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error)); return; }
                    if (!socket.Poll(0, SelectMode.SelectWrite)) return;
                    open = true;
                }
                WritePending();
                Read();
            }
            catch (SocketException e)
            {
                if (e.SocketErrorCode != SocketError.WouldBlock) Drop(e.Message);
            }
            catch (Exception e)
            {
                Drop(e.Message);
            }
        }

        /// <inheritdoc/>
        public bool TrySend(byte[] payload)
        {
            if (closed) return true;
            if (!open) return false;
            try
            {
                WritePending();
                if (outFrame != null) return false;
                outFrame = Framing.Frame(payload, lenMsgLen, littleEndian);
                outAt = 0;
                WritePending();
            }
            catch (SocketException e)
            {
                if (e.SocketErrorCode != SocketError.WouldBlock) Drop(e.Message);
            }
            return true;
        }

        void WritePending()
        {
            while (outFrame != null)
            {
                SocketError err;
                int n = socket.Send(outFrame, outAt, outFrame.Length - outAt, SocketFlags.None, out err);
                if (err == SocketError.WouldBlock) return;
                if (err != SocketError.Success) { Drop("write: " + err); return; }
                outAt += n;
                if (outAt == outFrame.Length) outFrame = null;
            }
        }

        void Read()
        {
            while (!closed)
            {
                if (inLen == inBuf.Length) Array.Resize(ref inBuf, inBuf.Length * 2);
                SocketError err;
                int n = socket.Receive(inBuf, inLen, inBuf.Length - inLen, SocketFlags.None, out err);
                if (err == SocketError.WouldBlock) break;
                if (err != SocketError.Success) { Drop("read: " + err); break; }
                if (n == 0) { Drop(inLen == 0 ? "end of stream" : "connection ended inside a frame"); break; }
                inLen += n;
                Split();
            }
        }

        /// <summary>The whole frames at the front of the buffer go to the queue.</summary>
        void Split()
        {
            int at = 0;
            while (inLen - at >= lenMsgLen)
            {
                uint n = Framing.Length(inBuf, at, lenMsgLen, littleEndian);
                if (inLen - at - lenMsgLen < n) break;
                var p = new byte[n];
                Buffer.BlockCopy(inBuf, at + lenMsgLen, p, 0, (int)n);
                frames.Enqueue(p);
                at += lenMsgLen + (int)n;
            }
            Buffer.BlockCopy(inBuf, at, inBuf, 0, inLen - at);
            inLen -= at;
        }

        /// <inheritdoc/>
        public byte[] TryReceive() { return frames.Count > 0 ? frames.Dequeue() : null; }

        /// <inheritdoc/>
        public void Drop(string why)
        {
            if (closed) return;
            cause = why;
            Close(false);
        }

        /// <inheritdoc/>
        public void Close(bool goodbye)
        {
            if (closed) return;
            closed = true;
            if (cause == "") cause = "closed";
            try
            {
                if (goodbye) { WritePending(); socket.Shutdown(SocketShutdown.Send); }
                else socket.LingerState = new LingerOption(true, 0);
            }
            catch (Exception) { }
            socket.Close();
        }
    }
}
