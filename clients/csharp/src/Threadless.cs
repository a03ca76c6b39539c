// The client without threads (ClientOptions.Threadless; WebGL builds): Poll() does the
// network's work on the caller's thread, none of it blocking: it opens a connection and
// waits for it across calls, reads what arrived, runs the session's state machine
// (Session.cs), writes the outbox as far as the socket takes it, and after a drop waits out
// the backoff across calls. The transports are IPolledTransport: the browser's WebSocket
// (WebGLSocket) in WebGL builds, a non-blocking TCP socket (PolledTcpTransport) elsewhere.
using System;
using System.Collections.Generic;

namespace Longlink
{
    public sealed partial class Client
    {
        // The connection being opened or in use, and when the next attempt may start.
        IPolledTransport polled;
        bool opening;
        DateTime openedAt;
        DateTime attemptAt;
        // Before the first connection: each address once, and Closed if none answers.
        bool everOpen;
        readonly List<string> openErrors = new List<string>();
        bool quickAttempt;

        void StartThreadless()
        {
            if (options.OpenPolled == null) foreach (var a in addresses) Transports.CheckPolled(a);
            state = options.Resume ? State.Down : State.Plain;
            attemptAt = DateTime.UtcNow;
            Step();
        }

        /// <summary>One round of the network's work (Poll calls it).</summary>
        void Step()
        {
            if (polled == null)
            {
                bool stop;
                lock (sync) stop = closed;
                if (stop || DateTime.UtcNow < attemptAt) return;
                Open();
                if (polled == null) return;
            }
            var t = polled;
            t.Update();
            if (opening && !Opened(t)) return;
            try
            {
                byte[] p;
                while ((p = t.TryReceive()) != null)
                {
                    IMessage m = codec.Decode(p);
                    if (m != null) Handle(t, m);
                }
            }
            catch (Exception e)
            {
                t.Drop(e.Message);
            }
            TickOnce();
            Flush();
            if (t.IsClosed) OnDrop(t);
        }

        /// <summary>Starts an attempt on the current address.</summary>
        void Open()
        {
            if (everOpen) CheckExpired();
            try
            {
                polled = options.OpenPolled != null ? options.OpenPolled(Address) : Transports.OpenPolled(Address, options);
                opening = true;
                openedAt = DateTime.UtcNow;
            }
            catch (Exception e) when (!(e is ArgumentException))
            {
                AttemptFailed(e.Message);
            }
        }

        /// <summary>Whether the connection being opened is open (then attached); a failure or timeout ends the attempt.</summary>
        bool Opened(IPolledTransport t)
        {
            if (t.IsOpen)
            {
                opening = false;
                everOpen = true;
                if (!Attach(t)) { t.Close(true); polled = null; return false; }
                return true;
            }
            if (!t.IsClosed && (DateTime.UtcNow - openedAt).TotalMilliseconds < options.ConnectTimeoutMs) return false;
            string cause = t.IsClosed ? t.Cause : "connect to " + Address + " timed out";
            t.Close(false);
            polled = null;
            AttemptFailed(cause);
            return false;
        }

        /// <summary>An attempt failed: the next address (before the first connection, Closed once each failed).</summary>
        void AttemptFailed(string cause)
        {
            NextAddress();
            if (!everOpen)
            {
                openErrors.Add(cause);
                if (openErrors.Count < addresses.Length) { attemptAt = DateTime.UtcNow; return; }
                lock (sync) closed = true;
                inbox.Enqueue(new ClosedEvent { Reason = "cannot connect: " + string.Join("; ", openErrors.ToArray()) });
                return;
            }
            attemptAt = DateTime.UtcNow.AddMilliseconds(PlanAttempt(ref quickAttempt, cause));
        }

        /// <summary>The connection ended: Closed, or (with Resume) the first attempt after its delay.</summary>
        void OnDrop(IPolledTransport t)
        {
            polled = null;
            bool quick;
            bool goOn = Dropped(t, out quick);
            if (closing.WaitOne(0)) return;
            if (!goOn) { inbox.Enqueue(new ClosedEvent { Reason = t.Cause }); return; }
            attemptAt = DateTime.UtcNow.AddMilliseconds(PlanAttempt(ref quick, t.Cause));
        }

        /// <summary>Writes the outbox as far as the connection takes it now; the rest waits for the next call.</summary>
        void Flush()
        {
            while (true)
            {
                Out o;
                lock (sync)
                {
                    if (outbox.Count == 0 || outbox.Peek().T == null) return;
                    o = outbox.Peek();
                    if (o.Close == 0 && o.T != transport) { outbox.Dequeue(); continue; }
                }
                if (o.Close == 0 && !((IPolledTransport)o.T).TrySend(o.Payload)) return;
                if (o.Close != 0) o.T.Close(o.Close == 2);
                lock (sync) outbox.Dequeue();
            }
        }

        /// <summary>Close without threads: what the socket takes now, the goodbye, Closed.</summary>
        void CloseThreadless(ITransport t)
        {
            Flush();
            if (t != null) t.Close(true);
            if (polled != null && polled != t) polled.Close(false);
            polled = null;
            inbox.Enqueue(new ClosedEvent { Reason = "closed" });
        }
    }
}
