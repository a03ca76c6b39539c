// WebSocket (RFC 6455, client side) over a TcpClient, TLS through SslStream for wss://: one
// binary message per payload, blocking calls made from the client's threads only. Not
// ClientWebSocket: Mono's runs its reads as thread-pool continuations and starts timers (a
// keep-alive timer, and one bounding the wait for the server's end after a close frame), and
// Mono tears down its thread pool and timer thread at exit: a program that returned right
// after Close while those ran hung (deadlocked on the timer scheduler's lock, or spinning).
// Here each call is a plain socket call on the calling thread, as in TcpTransport.
using System;
using System.IO;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Threading;

namespace Longlink
{
    /// <summary>WebSocket: one binary message per payload.</summary>
    public sealed class WsTransport : IBlockingTransport
    {
        /// <summary>The largest message read (64 MiB).</summary>
        const long MaxMessage = 64 * 1024 * 1024;
        /// <summary>How long Close's goodbye waits for the server's close frame.</summary>
        const int GoodbyeMs = 2000;
        const string Guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

        readonly TcpClient tcp;
        readonly Stream stream;
        readonly object writeLock = new object();
        readonly RandomNumberGenerator rng = RandomNumberGenerator.Create();
        readonly byte[] head = new byte[8];
        readonly ManualResetEvent readEnded = new ManualResetEvent(false);
        int closedFlag;
        // Whether a reader has called Receive: Close's goodbye then waits for the server's answer.
        int read;
        bool sentClose;

        WsTransport(TcpClient tcp, Stream stream)
        {
            this.tcp = tcp;
            this.stream = stream;
        }

        internal static WsTransport Open(Uri uri, ClientOptions o)
        {
            bool tls = uri.Scheme == "wss";
            int port = uri.Port > 0 ? uri.Port : tls ? 443 : 80;
            var tcp = new TcpClient { NoDelay = true };
            try
            {
                var connect = tcp.ConnectAsync(uri.Host, port);
                if (!connect.Wait(o.ConnectTimeoutMs)) throw new TimeoutException("connect to " + uri + " timed out");
                // The handshake's reads are bounded by the socket's receive timeout (not a timer).
                tcp.ReceiveTimeout = o.ConnectTimeoutMs;
                Stream s = tcp.GetStream();
                if (tls)
                {
                    var ssl = new SslStream(s, false, o.CertificateValidation);
                    ssl.AuthenticateAsClient(uri.Host);
                    s = ssl;
                }
                var t = new WsTransport(tcp, s);
                t.Handshake(uri, port, tls);
                tcp.ReceiveTimeout = 0;
                return t;
            }
            catch (AggregateException e)
            {
                tcp.Close();
                throw new IOException("cannot connect to " + uri + ": " + e.InnerException.Message, e.InnerException);
            }
            catch (Exception e) when (!(e is TimeoutException))
            {
                tcp.Close();
                throw new IOException("cannot connect to " + uri + ": " + e.Message, e);
            }
            catch
            {
                tcp.Close();
                throw;
            }
        }

        void Handshake(Uri uri, int port, bool tls)
        {
            var nonce = new byte[16];
            rng.GetBytes(nonce);
            string key = Convert.ToBase64String(nonce);
            bool defaultPort = port == (tls ? 443 : 80);
            string request = "GET " + uri.PathAndQuery + " HTTP/1.1\r\n"
                + "Host: " + uri.Host + (defaultPort ? "" : ":" + port) + "\r\n"
                + "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n";
            var bytes = Encoding.ASCII.GetBytes(request);
            stream.Write(bytes, 0, bytes.Length);
            string[] lines = ReadHeaders().Split(new[] { "\r\n" }, StringSplitOptions.None);
            if (lines[0].Split(' ').Length < 2 || lines[0].Split(' ')[1] != "101")
                throw new IOException("websocket handshake: " + lines[0]);
            string accept;
            using (var sha1 = SHA1.Create())
                accept = Convert.ToBase64String(sha1.ComputeHash(Encoding.ASCII.GetBytes(key + Guid)));
            foreach (var line in lines)
            {
                int colon = line.IndexOf(':');
                if (colon > 0 && line.Substring(0, colon).Trim().Equals("Sec-WebSocket-Accept", StringComparison.OrdinalIgnoreCase))
                {
                    if (line.Substring(colon + 1).Trim() == accept) return;
                    break;
                }
            }
            throw new IOException("websocket handshake: no matching Sec-WebSocket-Accept");
        }

        /// <summary>The response's status line and headers (up to the blank line), read byte by byte so that no frame byte is taken.</summary>
        string ReadHeaders()
        {
            var sb = new StringBuilder();
            var one = new byte[1];
            while (!sb.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
            {
                if (sb.Length > 16 * 1024) throw new IOException("websocket handshake: response headers past 16 KiB");
                if (stream.Read(one, 0, 1) != 1) throw new EndOfStreamException("websocket handshake: connection ended");
                sb.Append((char)one[0]);
            }
            return sb.ToString(0, sb.Length - 4);
        }

        /// <inheritdoc/>
        public void Send(byte[] payload)
        {
            WriteFrame(0x2, payload, payload.Length);
        }

        /// <summary>Writes one masked frame (FIN set) of <paramref name="opcode"/>; frames never interleave.</summary>
        void WriteFrame(int opcode, byte[] payload, int length)
        {
            int n = length < 126 ? 2 : length <= 0xffff ? 4 : 10;
            var frame = new byte[n + 4 + length];
            frame[0] = (byte)(0x80 | opcode);
            if (n == 2) frame[1] = (byte)(0x80 | length);
            else if (n == 4)
            {
                frame[1] = 0x80 | 126;
                frame[2] = (byte)(length >> 8);
                frame[3] = (byte)length;
            }
            else
            {
                frame[1] = 0x80 | 127;
                for (int i = 0; i < 8; i++) frame[2 + i] = (byte)((long)length >> (56 - 8 * i));
            }
            var mask = new byte[4];
            lock (writeLock)
            {
                if (sentClose) throw new IOException("websocket closing");
                rng.GetBytes(mask);
                Buffer.BlockCopy(mask, 0, frame, n, 4);
                for (int i = 0; i < length; i++) frame[n + 4 + i] = (byte)(payload[i] ^ mask[i & 3]);
                if (opcode == 0x8) sentClose = true;
                stream.Write(frame, 0, frame.Length);
            }
        }

        /// <inheritdoc/>
        public byte[] Receive()
        {
            Volatile.Write(ref read, 1);
            try
            {
                return ReadMessage();
            }
            catch (Exception)
            {
                readEnded.Set();
                throw;
            }
        }

        byte[] ReadMessage()
        {
            MemoryStream message = null;
            while (true)
            {
                ReadFull(head, 2, true);
                bool fin = (head[0] & 0x80) != 0;
                int opcode = head[0] & 0x0f;
                if ((head[1] & 0x80) != 0) throw new InvalidDataException("websocket: a masked frame from the server");
                long length = head[1] & 0x7f;
                if (length == 126)
                {
                    ReadFull(head, 2, false);
                    length = (head[0] << 8) | head[1];
                }
                else if (length == 127)
                {
                    ReadFull(head, 8, false);
                    length = 0;
                    for (int i = 0; i < 8; i++) length = (length << 8) | head[i];
                }
                if (length < 0 || length > MaxMessage || (message != null && message.Length + length > MaxMessage))
                    throw new InvalidDataException("websocket: message past 64 MiB");
                var payload = new byte[length];
                ReadFull(payload, payload.Length, false);
                switch (opcode)
                {
                    case 0x8: return Closed(payload);
                    case 0x9: Pong(payload); continue;
                    case 0xA: continue;
                    case 0x0:
                        if (message == null) throw new InvalidDataException("websocket: a continuation outside a message");
                        break;
                    case 0x1:
                    case 0x2:
                        if (message != null) throw new InvalidDataException("websocket: a message inside a message");
                        message = new MemoryStream();
                        break;
                    default: throw new InvalidDataException("websocket: opcode " + opcode);
                }
                message.Write(payload, 0, payload.Length);
                if (fin) return message.ToArray();
            }
        }

        /// <summary>The server's close frame: answered (unless this side said goodbye first); null for 1000, else throws.</summary>
        byte[] Closed(byte[] payload)
        {
            int code = payload.Length >= 2 ? (payload[0] << 8) | payload[1] : 1005;
            string reason = payload.Length > 2 ? Encoding.UTF8.GetString(payload, 2, payload.Length - 2) : "";
            try
            {
                lock (writeLock)
                {
                    if (!sentClose) WriteFrame(0x8, payload, Math.Min(payload.Length, 2));
                }
            }
            catch (Exception) { }
            readEnded.Set();
            if (code == 1000) return null;
            throw new IOException("websocket closed: " + code + " " + reason);
        }

        void Pong(byte[] payload)
        {
            try
            {
                WriteFrame(0xA, payload, payload.Length);
            }
            catch (Exception) { }
        }

        /// <summary>Reads exactly <paramref name="n"/> bytes; at a frame's start the end of the stream is a drop without a close frame.</summary>
        void ReadFull(byte[] b, int n, bool frameStart)
        {
            int got = 0;
            while (got < n)
            {
                int r = stream.Read(b, got, n - got);
                if (r <= 0)
                {
                    throw new EndOfStreamException(got == 0 && frameStart
                        ? "websocket: connection ended without a close frame"
                        : "websocket: connection ended inside a frame");
                }
                got += r;
            }
        }

        /// <inheritdoc/>
        public void Close(bool goodbye)
        {
            if (Interlocked.Exchange(ref closedFlag, 1) == 1) return;
            try
            {
                if (goodbye)
                {
                    // Bounded by the socket's send timeout (not a timer); then, when a reader
                    // reads, the server's close frame is awaited so that closing the socket
                    // cannot reset the connection before the server has read the goodbye.
                    tcp.SendTimeout = GoodbyeMs;
                    WriteFrame(0x8, new byte[] { 0x03, 0xe8, (byte)'b', (byte)'y', (byte)'e' }, 5);
                    if (Volatile.Read(ref read) == 1) readEnded.WaitOne(GoodbyeMs);
                }
                else tcp.Client.LingerState = new LingerOption(true, 0);
            }
            catch (Exception) { }
            try { stream.Close(); } catch (Exception) { }
            tcp.Close();
        }
    }
}
