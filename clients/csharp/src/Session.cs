// The session's state machine, the same with threads and without: messages in and the LL_
// protocol, a new connection's first payloads, a drop and the attempts after it, and the
// periodic work (acknowledgements, the resume's timeout, LL_Move's delay). It only queues
// writes (the outbox) and events (the inbox); the callers (Threads.cs, Threadless.cs) do
// the I/O and the waiting.
using System;
using System.Collections.Generic;
using System.Threading;

namespace Longlink
{
    public sealed partial class Client
    {
        DateTime dropAt;
        int attempt;
        // Something went out after LL_SessionStart on a connection not yet answered.
        bool startedWrites;

        void Handle(ITransport t, IMessage m)
        {
            string name = m.MessageName;
            if (Protocol.IsProtocol(name)) { HandleProtocol(t, m); return; }
            bool ack = false;
            lock (sync)
            {
                if (state == State.Live && codec.DeliveryOf(m) != Delivery.Volatile)
                {
                    received++;
                    ack = received - acked >= 32;
                }
            }
            inbox.Enqueue(m);
            if (ack) SendAck(t);
        }

        void HandleProtocol(ITransport t, IMessage m)
        {
            var session = m as LL_Session;
            if (session != null)
            {
                lock (sync)
                {
                    if (state != State.Starting) return;
                    token = session.Token;
                    windowS = session.WindowS;
                    state = State.Live;
                    received = acked = 0;
                    attempt = 0;
                }
                sessionReady.Set();
                return;
            }
            var resumed = m as LL_Resumed;
            if (resumed != null) { OnResumed(t, resumed); return; }
            var refused = m as LL_ResumeRefused;
            if (refused != null)
            {
                State s;
                lock (sync) s = state;
                if (s == State.Resuming && refused.Reason == "retry") t.Close(false);
                else if (s == State.Resuming || s == State.Live) LoseSession(refused.Reason == "" ? "unknown" : refused.Reason, t);
                return;
            }
            var ack = m as LL_Ack;
            if (ack != null)
            {
                lock (sync) if (state == State.Live) kept.RemoveAll(k => k.Seq <= ack.Seq);
                return;
            }
            var move = m as LL_Move;
            if (move != null)
            {
                lock (sync) if (state == State.Live && moveAt == DateTime.MaxValue) moveAt = DateTime.UtcNow.AddMilliseconds(move.AfterMs);
            }
        }

        /// <summary>LL_Resumed: the new token, the kept messages the server had not handled again, in order.</summary>
        void OnResumed(ITransport t, LL_Resumed r)
        {
            lock (sync)
            {
                if (state != State.Resuming) return;
                token = r.Token;
                kept.RemoveAll(k => k.Seq <= r.LastSeq);
                state = State.Live;
                // Ahead of any Send from now on: the outbox keeps the order.
                foreach (var k in kept) Enqueue(t, k.Payload);
                inbox.Enqueue(new ResumedEvent { Attempts = attempt, LastSeq = r.LastSeq, Resent = kept.Count });
                attempt = 0;
            }
        }

        /// <summary>
        /// A new connection is open: it becomes the client's, with its first payloads queued
        /// (LL_Resume; or LL_SessionStart followed by what the game sent meanwhile, numbered
        /// from 1 in the new session; or, without Resume, what the game sent meanwhile).
        /// False once closed.
        /// </summary>
        bool Attach(ITransport t)
        {
            lock (sync)
            {
                if (closed) return false;
                transport = t;
                if (!options.Resume)
                {
                    // Sends from before the first connection (threadless) go to this one.
                    var waiting = outbox.ToArray();
                    outbox.Clear();
                    foreach (var o in waiting) outbox.Enqueue(o.T == null ? new Out { T = t, Payload = o.Payload, Close = o.Close } : o);
                    Monitor.PulseAll(sync);
                    return true;
                }
                if (token != null)
                {
                    state = State.Resuming;
                    resumeSentAt = DateTime.UtcNow;
                    acked = received;
                    Enqueue(t, codec.Encode(new LL_Resume { Token = token, LastSeq = received }));
                    return true;
                }
                StartSession(t);
                return true;
            }
        }

        /// <summary>LL_SessionStart on <paramref name="t"/>, then what the game sent meanwhile. Under sync.</summary>
        void StartSession(ITransport t)
        {
            state = State.Starting;
            Enqueue(t, codec.Encode(new LL_SessionStart()));
            foreach (var k in kept) Enqueue(t, k.Payload);
            startedWrites = kept.Count > 0;
        }

        /// <summary>The session is gone: forget it; start a fresh one on <paramref name="t"/> if open.</summary>
        void LoseSession(string reason, ITransport t)
        {
            lock (sync)
            {
                token = null;
                kept.Clear();
                sent = received = acked = 0;
                moveAt = DateTime.MaxValue;
                state = State.Down;
                if (t != null) StartSession(t);
            }
            inbox.Enqueue(new SessionLostEvent { Reason = reason });
        }

        void SendAck(ITransport t)
        {
            lock (sync)
            {
                acked = received;
                ackedAt = DateTime.UtcNow;
                Enqueue(t, codec.Encode(new LL_Ack { Seq = received }));
            }
        }

        /// <summary>
        /// The connection <paramref name="t"/> ended: with Resume the client goes on (true),
        /// without it the client is closed (false). Returns whether the first attempt is at
        /// once (after LL_Move).
        /// </summary>
        bool Dropped(ITransport t, out bool quick)
        {
            lock (sync)
            {
                if (transport == t) transport = null;
                quick = moving;
                if (!options.Resume) { closed = true; return false; }
                if (state == State.Live) dropAt = DateTime.UtcNow;
                else if (state == State.Resuming) at = (at + 1) % addresses.Length;
                moving = false;
                moveAt = DateTime.MaxValue;
                // A fresh session that was never answered: what went out in it may be lost.
                bool lost = state == State.Starting && startedWrites;
                state = State.Down;
                if (lost) { kept.Clear(); sent = 0; inbox.Enqueue(new SessionLostEvent { Reason = "unknown" }); }
                return true;
            }
        }

        /// <summary>The next attempt's delay (0 if <paramref name="quick"/>); raises Reconnecting.</summary>
        int PlanAttempt(ref bool quick, string cause)
        {
            attempt++;
            int cap = (int)Math.Min(options.MaxDelayMs, (long)options.InitialDelayMs << Math.Min(attempt - 1, 20));
            int delay = quick ? 0 : random.Next(0, Math.Max(1, cap));
            inbox.Enqueue(new ReconnectingEvent { Attempt = attempt, DelayMs = delay, Address = Address, Cause = cause, Moved = quick });
            quick = false;
            return delay;
        }

        /// <summary>Before an attempt: a session whose window has passed is lost.</summary>
        void CheckExpired()
        {
            bool expired;
            lock (sync) expired = token != null && (DateTime.UtcNow - dropAt).TotalSeconds >= windowS;
            if (expired) LoseSession("expired", null);
        }

        void NextAddress()
        {
            lock (sync) at = (at + 1) % addresses.Length;
        }

        /// <summary>
        /// The periodic work, every 50 ms or so: an LL_Ack 200 ms after the first message not
        /// acknowledged; a resume not answered within ConnectTimeoutMs drops the connection;
        /// LL_Move's delay over: an LL_Ack, then the connection ends and the next attempt goes
        /// to the next address at once.
        /// </summary>
        void TickOnce()
        {
            ITransport t;
            bool ack, timeout, move = false;
            lock (sync)
            {
                t = transport;
                if (t == null) return;
                var now = DateTime.UtcNow;
                ack = state == State.Live && received > acked && (now - ackedAt).TotalMilliseconds >= 200;
                timeout = state == State.Resuming && (now - resumeSentAt).TotalMilliseconds > options.ConnectTimeoutMs;
                if (state == State.Live && now >= moveAt)
                {
                    move = true;
                    moving = true;
                    moveAt = DateTime.MaxValue;
                    at = (at + 1) % addresses.Length;
                }
            }
            if (ack || move) SendAck(t);
            if (move) lock (sync) EnqueueDrop(t);
            if (timeout) t.Close(false);
        }
    }
}
