// The client: one connection, or with Resume one session across connections, to a longlink
// (or leaf) server. The network runs on two background threads (the reader, which also
// reconnects, and a ticker for acknowledgements and timeouts); the game receives messages
// and events only in Poll(), on its own thread.
//
// Session resume (crates/longlink-wire/src/resume.md): LL_SessionStart, then every
// application message is numbered both ways; LL_Ack every 32 messages or 200 ms; what the
// client sends is kept until the server's LL_Ack covers it. On a drop: full-jitter backoff
// (InitialDelayMs doubling to MaxDelayMs) through the addresses in turn, LL_Resume first,
// and on LL_Resumed the kept messages the server had not handled go out again.
// LL_ResumeRefused{"retry"}: the next attempt. Any other refusal, or the window passed:
// SessionLost, and a fresh session. LL_Move{after_ms}: after that long, resume on the next
// address.
using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.Threading;

namespace Longlink
{
    /// <summary>A connection (or a resumable session) to a longlink server.</summary>
    public sealed partial class Client
    {
        enum State { Plain, Starting, Live, Resuming, Down }

        struct Kept
        {
            public ulong Seq;
            public byte[] Payload;
        }

        readonly ClientOptions options;
        readonly WireCodec codec;
        readonly string[] addresses;
        readonly object sync = new object();
        readonly object writeLock = new object();
        readonly ConcurrentQueue<object> inbox = new ConcurrentQueue<object>();
        readonly ManualResetEvent closing = new ManualResetEvent(false);
        readonly ManualResetEvent sessionReady = new ManualResetEvent(false);
        readonly System.Random random = new System.Random();

        ITransport transport;
        State state;
        int at;
        bool closed;
        // Resume: the session, the numbering both ways, what is kept for a resend.
        string token;
        uint windowS;
        ulong sent, received, acked;
        readonly List<Kept> kept = new List<Kept>();
        DateTime ackedAt = DateTime.UtcNow;
        DateTime resumeSentAt;
        DateTime moveAt = DateTime.MaxValue;
        bool moving;

        /// <summary>The connection dropped and the client tries again (raised in Poll).</summary>
        public event Action<ReconnectingEvent> Reconnecting;
        /// <summary>The session is resumed (raised in Poll).</summary>
        public event Action<ResumedEvent> Resumed;
        /// <summary>The session is gone: log in again (raised in Poll).</summary>
        public event Action<SessionLostEvent> SessionLost;
        /// <summary>The client is closed for good (raised in Poll).</summary>
        public event Action<ClosedEvent> Closed;

        /// <summary>The address of the current (or last) connection.</summary>
        public string Address { get { lock (sync) return addresses[at]; } }
        /// <summary>The session's token (null without resume).</summary>
        public string SessionToken { get { lock (sync) return token; } }

        Client(ClientOptions options, MessageRegistry registry)
        {
            this.options = options;
            addresses = options.Addresses;
            codec = new WireCodec(registry, options.Encoding, options.LittleEndian);
        }

        /// <summary>
        /// Connects to the first address that answers (and with Resume, starts the session);
        /// throws IOException when none does.
        /// </summary>
        public static Client Connect(ClientOptions options, MessageRegistry registry)
        {
            if (options == null || options.Addresses == null || options.Addresses.Length == 0)
                throw new ArgumentException("ClientOptions.Addresses is empty");
            if (registry == null) throw new ArgumentNullException("registry");
            var c = new Client(options, registry);
            var errors = new List<string>();
            for (int i = 0; i < c.addresses.Length && c.transport == null; i++)
            {
                try
                {
                    c.transport = Transports.Open(c.addresses[i], options);
                    c.at = i;
                }
                catch (Exception e) when (e is IOException || e is TimeoutException || e is System.Net.Sockets.SocketException)
                {
                    errors.Add(e.Message);
                }
            }
            if (c.transport == null) throw new IOException("cannot connect: " + string.Join("; ", errors.ToArray()));
            c.state = options.Resume ? State.Starting : State.Plain;
            if (options.Resume) c.Write(c.transport, c.codec.Encode(new LL_SessionStart()));
            c.StartThreads();
            if (options.Resume && !c.sessionReady.WaitOne(options.ConnectTimeoutMs))
            {
                c.Close();
                throw new IOException("no LL_Session from " + c.addresses[c.at] + " (is [gate] resume_window set?)");
            }
            return c;
        }

        void StartThreads()
        {
            new Thread(Run) { IsBackground = true, Name = "longlink reader" }.Start();
            if (options.Resume) new Thread(Tick) { IsBackground = true, Name = "longlink ticker" }.Start();
        }

        /// <summary>
        /// Sends a message. With Resume it is numbered and kept until the server acknowledges it;
        /// while reconnecting it waits and goes out after the resume. Throws once closed.
        /// </summary>
        public void Send(IMessage message)
        {
            byte[] payload = codec.Encode(message);
            ITransport t;
            lock (sync)
            {
                if (closed) throw new InvalidOperationException("the client is closed");
                if (state == State.Plain) t = transport;
                else
                {
                    kept.Add(new Kept { Seq = ++sent, Payload = payload });
                    t = state == State.Live || state == State.Starting ? transport : null;
                    if (t != null && state == State.Starting) startedWrites = true;
                }
            }
            if (t != null) Write(t, payload);
        }

        /// <summary>
        /// Hands over what arrived since the last call, on the caller's thread (call it from
        /// Update()): each message to <paramref name="onMessage"/>, and raises the events.
        /// Returns how many messages it handed over.
        /// </summary>
        public int Poll(Action<IMessage> onMessage)
        {
            int n = 0;
            object item;
            while (inbox.TryDequeue(out item))
            {
                var m = item as IMessage;
                if (m != null) { n++; if (onMessage != null) onMessage(m); continue; }
                if (item is ReconnectingEvent) { var h = Reconnecting; if (h != null) h((ReconnectingEvent)item); }
                else if (item is ResumedEvent) { var h = Resumed; if (h != null) h((ResumedEvent)item); }
                else if (item is SessionLostEvent) { var h = SessionLost; if (h != null) h((SessionLostEvent)item); }
                else if (item is ClosedEvent) { var h = Closed; if (h != null) h((ClosedEvent)item); }
            }
            return n;
        }

        /// <summary>Closes for good (a WebSocket with code 1000: the server ends the session). Closed follows in Poll.</summary>
        public void Close()
        {
            ITransport t;
            lock (sync)
            {
                if (closed) return;
                closed = true;
                t = transport;
            }
            closing.Set();
            if (t != null) t.Close(true);
        }

        /// <summary>Writes a payload; a failure drops the connection (the reader sees it).</summary>
        void Write(ITransport t, byte[] payload)
        {
            try
            {
                lock (writeLock) t.Send(payload);
            }
            catch (Exception e) when (!(e is ArgumentException))
            {
                t.Close(false);
            }
        }
    }
}
