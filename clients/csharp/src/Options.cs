// The client's settings and the events it hands to the game in Poll().
using System.Net.Security;

namespace Longlink
{
    /// <summary>How to connect.</summary>
    public sealed class ClientOptions
    {
        /// <summary>The server's addresses (<c>tcp://host:port</c>, <c>tls://…</c>, <c>ws://…</c>, <c>wss://…</c>), tried in turn.</summary>
        public string[] Addresses = new string[0];
        /// <summary>The payload encoding the server uses.</summary>
        public WireEncoding Encoding = WireEncoding.Json;
        /// <summary>Session resume (the server needs <c>[gate] resume_window</c> &gt; 0).</summary>
        public bool Resume;
        /// <summary>TCP's length prefix: 1, 2 or 4 bytes (leaf's LenMsgLen).</summary>
        public int LenMsgLen = 2;
        /// <summary>Byte order of the length prefix and the protobuf id (leaf's LittleEndian).</summary>
        public bool LittleEndian;
        /// <summary>How long a connection (and a resume's answer) may take.</summary>
        public int ConnectTimeoutMs = 5000;
        /// <summary>
        /// How long Close may wait for the client's threads to end (what is queued written, the
        /// goodbye answered). Once they have, a program may end at once: Mono's shutdown races
        /// a thread still running (it spun in Environment.Exit). 0: Close returns at once.
        /// </summary>
        public int CloseWaitMs = 1000;
        /// <summary>The first reconnection's delay cap (full jitter; doubles up to MaxDelayMs).</summary>
        public int InitialDelayMs = 100;
        /// <summary>The largest reconnection delay.</summary>
        public int MaxDelayMs = 3000;
        /// <summary>Checks the server's certificate for tls:// and wss:// (null: the system's check).</summary>
        public RemoteCertificateValidationCallback CertificateValidation;
        /// <summary>
        /// How many messages may wait: not yet written to the socket, or with Resume not yet
        /// acknowledged by the server (which holds all sent while reconnecting). At that many,
        /// Send throws <see cref="SendQueueFullException"/>. 1024 is the server's default
        /// <c>[gate] resume_buffer</c>.
        /// </summary>
        public int MaxQueuedSends = 1024;
        /// <summary>
        /// No threads of the client's own: Connect returns at once, and Poll() connects, reads,
        /// writes, acknowledges and resumes, on the caller's thread (call it every frame). On by
        /// default in WebGL builds, where it runs over the browser's WebSocket
        /// (<see cref="WebGLSocket"/>); elsewhere it takes <c>tcp://</c> addresses.
        /// </summary>
        public bool Threadless = DefaultThreadless;
        /// <summary>
        /// Threadless: opens a connection to an address (null: the platform's, see
        /// <see cref="Transports.OpenPolled"/>). For a transport of your own, or a
        /// <see cref="WebGLSocket"/> over another bridge.
        /// </summary>
        public System.Func<string, IPolledTransport> OpenPolled;

#if UNITY_WEBGL && !UNITY_EDITOR
        const bool DefaultThreadless = true;
#else
        const bool DefaultThreadless = false;
#endif
    }

    /// <summary>Send found <see cref="ClientOptions.MaxQueuedSends"/> messages waiting (the server reads too slowly, or the client is reconnecting for long).</summary>
    public sealed class SendQueueFullException : System.InvalidOperationException
    {
        /// <summary>How many messages were waiting.</summary>
        public readonly int Waiting;

        /// <summary>The exception for <paramref name="waiting"/> messages.</summary>
        public SendQueueFullException(int waiting)
            : base("the send queue is full: " + waiting + " messages wait (ClientOptions.MaxQueuedSends)")
        {
            Waiting = waiting;
        }
    }

    /// <summary>The connection dropped; the client tries again after <c>DelayMs</c>.</summary>
    public sealed class ReconnectingEvent
    {
        /// <summary>The attempt's number since the drop (1 first).</summary>
        public int Attempt;
        /// <summary>The delay before it.</summary>
        public int DelayMs;
        /// <summary>The address it tries.</summary>
        public string Address;
        /// <summary>What ended the connection.</summary>
        public string Cause;
        /// <summary>Whether the attempt follows the server's LL_Move (a gate that drains): at once, to the next address.</summary>
        public bool Moved;
    }

    /// <summary>The session is resumed: nothing is lost.</summary>
    public sealed class ResumedEvent
    {
        /// <summary>Attempts it took.</summary>
        public int Attempts;
        /// <summary>The last client message the server had handled.</summary>
        public ulong LastSeq;
        /// <summary>How many client messages were sent again.</summary>
        public int Resent;
    }

    /// <summary>The session is gone (log in again); the client goes on with a fresh session.</summary>
    public sealed class SessionLostEvent
    {
        /// <summary>"unknown", "expired", "replaced", "overflow".</summary>
        public string Reason;
    }

    /// <summary>The client is closed for good.</summary>
    public sealed class ClosedEvent
    {
        /// <summary>Why: "closed" (Close was called), or what ended the connection.</summary>
        public string Reason;
    }
}
