// The client: one connection, or with Resume one session across connections, to a longlink
// (or leaf) server. Two ways to run: with threads of its own (a reader that also reconnects,
// a writer that drains the outbox, and with Resume a ticker; Threads.cs), or threadless,
// everything done inside Poll() (Threadless.cs; WebGL builds). Either way the game receives
// messages and events only in Poll(), on its own thread, and Send never blocks: it puts the
// payload in the outbox (bounded by MaxQueuedSends) and returns.
//
// Session resume (crates/longlink-wire/src/resume.md; Session.cs): LL_SessionStart, then
// every application message is numbered both ways; LL_Ack every 32 messages or 200 ms; what
// the client sends is kept until the server's LL_Ack covers it. On a drop: full-jitter
// backoff (InitialDelayMs doubling to MaxDelayMs) through the addresses in turn, LL_Resume
// first, and on LL_Resumed the kept messages the server had not handled go out again.
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

        /// <summary>What the outbox holds: a payload for a connection, or that connection's close.</summary>
        struct Out
        {
            public ITransport T;
            public byte[] Payload;
            // 0: a payload; 1: drop the connection; 2: close it with a goodbye.
            public int Close;
        }

        readonly ClientOptions options;
        readonly WireCodec codec;
        readonly string[] addresses;
        readonly long maxPayload;
        readonly object sync = new object();
        readonly ConcurrentQueue<object> inbox = new ConcurrentQueue<object>();
        readonly Queue<Out> outbox = new Queue<Out>();
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
        /// <summary>The session's token (null without resume, or before the session starts).</summary>
        public string SessionToken { get { lock (sync) return token; } }

        Client(ClientOptions options, MessageRegistry registry)
        {
            this.options = options;
            addresses = options.Addresses;
            codec = new WireCodec(registry, options.Encoding, options.LittleEndian);
            maxPayload = long.MaxValue;
            foreach (var a in addresses)
            {
                if (!a.StartsWith("tcp:", StringComparison.Ordinal) && !a.StartsWith("tls:", StringComparison.Ordinal)) continue;
                long max = options.LenMsgLen == 1 ? 0xff : options.LenMsgLen == 2 ? 0xffff : 0xffffffffL;
                maxPayload = Math.Min(maxPayload, max);
            }
        }

        /// <summary>
        /// Connects to the first address that answers (and with Resume, starts the session);
        /// throws IOException when none does. Threadless, it returns at once and Poll()
        /// connects (none answering is a Closed event).
        /// </summary>
        public static Client Connect(ClientOptions options, MessageRegistry registry)
        {
            if (options == null || options.Addresses == null || options.Addresses.Length == 0)
                throw new ArgumentException("ClientOptions.Addresses is empty");
            if (registry == null) throw new ArgumentNullException("registry");
            if (options.MaxQueuedSends < 1) throw new ArgumentException("ClientOptions.MaxQueuedSends is at least 1");
            var c = new Client(options, registry);
            if (options.Threadless) c.StartThreadless();
            else c.ConnectWithThreads();
            return c;
        }

        /// <summary>
        /// Sends a message: it goes to the outbox and out on the network's side, never blocking
        /// the caller. With Resume it is numbered and kept until the server acknowledges it;
        /// while reconnecting it waits and goes out after the resume. Throws
        /// <see cref="SendQueueFullException"/> when MaxQueuedSends messages wait,
        /// ArgumentException for a message too long for LenMsgLen, and
        /// InvalidOperationException once closed.
        /// </summary>
        public void Send(IMessage message)
        {
            byte[] payload = codec.Encode(message);
            if (payload.Length > maxPayload)
                throw new ArgumentException("message of " + payload.Length + " bytes is past LenMsgLen " + options.LenMsgLen);
            lock (sync)
            {
                if (closed) throw new InvalidOperationException("the client is closed");
                int waiting = Math.Max(outbox.Count, kept.Count);
                if (waiting >= options.MaxQueuedSends) throw new SendQueueFullException(waiting);
                if (state == State.Plain) Enqueue(transport, payload);
                else
                {
                    kept.Add(new Kept { Seq = ++sent, Payload = payload });
                    if (state == State.Live || state == State.Starting) Enqueue(transport, payload);
                    if (state == State.Starting && transport != null) startedWrites = true;
                }
            }
            if (options.Threadless) Flush();
        }

        /// <summary>
        /// Hands over what arrived since the last call, on the caller's thread (call it from
        /// Update()): each message to <paramref name="onMessage"/>, and raises the events.
        /// Threadless, it first does the network's work. Returns how many messages it handed over.
        /// </summary>
        public int Poll(Action<IMessage> onMessage)
        {
            if (options.Threadless) Step();
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

        /// <summary>
        /// Closes for good once what was sent is written (a WebSocket with code 1000: the server
        /// ends the session). With threads it returns once they have ended (the goodbye written
        /// and answered, about a round trip), or after <see cref="ClientOptions.CloseWaitMs"/>;
        /// then the program may end at once. Threadless it returns at once. Closed follows in Poll.
        /// </summary>
        public void Close()
        {
            ITransport t;
            lock (sync)
            {
                if (closed) return;
                closed = true;
                t = transport;
                if (t != null) outbox.Enqueue(new Out { T = t, Close = 2 });
                Monitor.PulseAll(sync);
            }
            closing.Set();
            if (options.Threadless) CloseThreadless(t);
            else
            {
                if (t != null) CloseLater(t);
                JoinThreads();
            }
        }

        /// <summary>Queues a payload for connection <paramref name="t"/> (null: the next one). Under sync.</summary>
        void Enqueue(ITransport t, byte[] payload)
        {
            outbox.Enqueue(new Out { T = t, Payload = payload });
            Monitor.PulseAll(sync);
        }

        /// <summary>Queues the end of connection <paramref name="t"/> after what is queued for it. Under sync.</summary>
        void EnqueueDrop(ITransport t)
        {
            outbox.Enqueue(new Out { T = t, Close = 1 });
            Monitor.PulseAll(sync);
        }
    }
}
