// The connections: TCP with leaf's length prefix (TLS through SslStream for tls://), and
// WebSocket (WsTransport.cs; one binary message per payload). Blocking calls, made from the
// client's background threads only.
using System;
using System.IO;
using System.Net.Security;
using System.Net.Sockets;
using System.Threading;

namespace Longlink
{
    /// <summary>One connection, as the client's state machine sees it.</summary>
    public interface ITransport
    {
        /// <summary>Closes: <paramref name="goodbye"/> ends a WebSocket with code 1000 (the session ends), else the connection is dropped. Closing twice does nothing.</summary>
        void Close(bool goodbye);
    }

    /// <summary>A connection with blocking calls (the client's threads make them).</summary>
    public interface IBlockingTransport : ITransport
    {
        /// <summary>Sends one payload (one call at a time); blocks while the socket is full.</summary>
        void Send(byte[] payload);
        /// <summary>The next payload; null at the end of the stream. Throws on a drop.</summary>
        byte[] Receive();
    }

    /// <summary>A connection that never blocks (threadless clients): the caller polls it.</summary>
    public interface IPolledTransport : ITransport
    {
        /// <summary>Whether it is open (false while connecting).</summary>
        bool IsOpen { get; }
        /// <summary>Whether it has ended (<see cref="Cause"/> says why).</summary>
        bool IsClosed { get; }
        /// <summary>Why it ended.</summary>
        string Cause { get; }
        /// <summary>Does what the socket allows now: finishes connecting, writes, reads.</summary>
        void Update();
        /// <summary>Takes a payload to send; false if it cannot take one now (then the same payload again later).</summary>
        bool TrySend(byte[] payload);
        /// <summary>The next payload that arrived, or null.</summary>
        byte[] TryReceive();
        /// <summary>Drops the connection for <paramref name="cause"/>.</summary>
        void Drop(string cause);
    }

    /// <summary>Opens connections by address.</summary>
    public static class Transports
    {
        /// <summary>Connects to <c>tcp://</c>, <c>tls://</c>, <c>ws://</c> or <c>wss://</c> within the timeout.</summary>
        public static IBlockingTransport Open(string address, ClientOptions o)
        {
            var uri = new Uri(address);
            switch (uri.Scheme)
            {
                case "tcp": return TcpTransport.Open(uri, o, false);
                case "tls": return TcpTransport.Open(uri, o, true);
                case "ws":
                case "wss": return WsTransport.Open(uri, o);
                default: throw new ArgumentException("address " + address + ": tcp://, tls://, ws:// or wss://");
            }
        }

        /// <summary>
        /// Starts connecting without blocking (threadless clients): <c>ws://</c> and <c>wss://</c>
        /// through the browser in WebGL builds, <c>tcp://</c> elsewhere.
        /// </summary>
        public static IPolledTransport OpenPolled(string address, ClientOptions o)
        {
            CheckPolled(address);
#if UNITY_WEBGL && !UNITY_EDITOR
            return new WebGLSocket(address);
#else
            return PolledTcpTransport.Open(new Uri(address), o);
#endif
        }

        /// <summary>Throws ArgumentException for an address a threadless client cannot open.</summary>
        public static void CheckPolled(string address)
        {
            string scheme = new Uri(address).Scheme;
#if UNITY_WEBGL && !UNITY_EDITOR
            if (scheme != "ws" && scheme != "wss") throw new ArgumentException("address " + address + ": a WebGL build connects to ws:// or wss://");
#else
            if (scheme != "tcp") throw new ArgumentException("address " + address + ": a threadless client outside WebGL connects to tcp://");
#endif
        }
    }

    /// <summary>leaf's length prefix: LenMsgLen bytes, big-endian unless LittleEndian.</summary>
    static class Framing
    {
        /// <summary>The largest frame read (64 MiB).</summary>
        const uint MaxFrame = 64 * 1024 * 1024;

        /// <summary>The payload behind its length prefix.</summary>
        internal static byte[] Frame(byte[] payload, int lenMsgLen, bool littleEndian)
        {
            var frame = new byte[lenMsgLen + payload.Length];
            uint n = (uint)payload.Length;
            for (int i = 0; i < lenMsgLen; i++)
            {
                int shift = littleEndian ? 8 * i : 8 * (lenMsgLen - 1 - i);
                frame[i] = (byte)(n >> shift);
            }
            Buffer.BlockCopy(payload, 0, frame, lenMsgLen, payload.Length);
            return frame;
        }

        /// <summary>The length in the prefix at <paramref name="at"/>; throws past 64 MiB.</summary>
        internal static uint Length(byte[] b, int at, int lenMsgLen, bool littleEndian)
        {
            uint n = 0;
            for (int i = 0; i < lenMsgLen; i++)
            {
                int shift = littleEndian ? 8 * i : 8 * (lenMsgLen - 1 - i);
                n |= (uint)b[at + i] << shift;
            }
            if (n > MaxFrame) throw new InvalidDataException("frame of " + n + " bytes");
            return n;
        }
    }

    /// <summary>TCP (or TLS) with leaf's length prefix: LenMsgLen 1, 2 or 4 bytes.</summary>
    public sealed class TcpTransport : IBlockingTransport
    {
        readonly TcpClient tcp;
        readonly Stream stream;
        readonly int lenMsgLen;
        readonly bool littleEndian;
        readonly byte[] header;
        int closedFlag;

        TcpTransport(TcpClient tcp, Stream stream, ClientOptions o)
        {
            this.tcp = tcp;
            this.stream = stream;
            lenMsgLen = o.LenMsgLen;
            littleEndian = o.LittleEndian;
            header = new byte[lenMsgLen];
        }

        internal static TcpTransport Open(Uri uri, ClientOptions o, bool tls)
        {
            if (o.LenMsgLen != 1 && o.LenMsgLen != 2 && o.LenMsgLen != 4) throw new ArgumentException("LenMsgLen is 1, 2 or 4");
            var tcp = new TcpClient { NoDelay = true };
            try
            {
                var connect = tcp.ConnectAsync(uri.Host, uri.Port);
                if (!connect.Wait(o.ConnectTimeoutMs)) throw new TimeoutException("connect to " + uri + " timed out");
                Stream s = tcp.GetStream();
                if (tls)
                {
                    var ssl = new SslStream(s, false, o.CertificateValidation);
                    ssl.AuthenticateAsClient(uri.Host);
                    s = ssl;
                }
                return new TcpTransport(tcp, s, o);
            }
            catch (AggregateException e)
            {
                tcp.Close();
                throw new IOException("cannot connect to " + uri + ": " + e.InnerException.Message, e.InnerException);
            }
            catch
            {
                tcp.Close();
                throw;
            }
        }

        /// <inheritdoc/>
        public void Send(byte[] payload)
        {
            long max = lenMsgLen == 1 ? 0xff : lenMsgLen == 2 ? 0xffff : 0xffffffffL;
            if (payload.Length > max) throw new ArgumentException("message of " + payload.Length + " bytes is past LenMsgLen " + lenMsgLen);
            var frame = Framing.Frame(payload, lenMsgLen, littleEndian);
            stream.Write(frame, 0, frame.Length);
        }

        /// <inheritdoc/>
        public byte[] Receive()
        {
            if (!ReadFull(header)) return null;
            uint n = Framing.Length(header, 0, lenMsgLen, littleEndian);
            var payload = new byte[n];
            if (!ReadFull(payload)) throw new EndOfStreamException("connection ended inside a frame");
            return payload;
        }

        bool ReadFull(byte[] b)
        {
            int got = 0;
            while (got < b.Length)
            {
                int r = stream.Read(b, got, b.Length - got);
                if (r <= 0)
                {
                    if (got == 0) return false;
                    throw new EndOfStreamException("connection ended inside a frame");
                }
                got += r;
            }
            return true;
        }

        /// <inheritdoc/>
        public void Close(bool goodbye)
        {
            if (Interlocked.Exchange(ref closedFlag, 1) == 1) return;
            try
            {
                if (!goodbye) tcp.Client.LingerState = new LingerOption(true, 0);
            }
            catch (Exception) { }
            try { stream.Close(); } catch (Exception) { }
            tcp.Close();
        }
    }
}
