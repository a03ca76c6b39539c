// The client's background side: the reader thread (messages in, the LL_ protocol, and
// reconnecting after a drop) and the ticker thread (acknowledgements, the resume's timeout,
// LL_Move's delay).
using System;
using System.Collections.Generic;

namespace Longlink
{
    public sealed partial class Client
    {
        DateTime dropAt;
        int attempt;
        // Something went out after LL_SessionStart on a connection not yet answered.
        bool startedWrites;

        void Run()
        {
            while (true)
            {
                ITransport t;
                lock (sync) t = transport;
                string cause = ReadAll(t);
                t.Close(false);
                lock (sync) if (transport == t) transport = null;
                if (closing.WaitOne(0)) { inbox.Enqueue(new ClosedEvent { Reason = "closed" }); return; }
                if (!options.Resume)
                {
                    lock (sync) closed = true;
                    inbox.Enqueue(new ClosedEvent { Reason = cause });
                    return;
                }
                if (!Reconnect(cause)) { inbox.Enqueue(new ClosedEvent { Reason = "closed" }); return; }
            }
        }

        /// <summary>Reads until the connection ends; returns why it ended.</summary>
        string ReadAll(ITransport t)
        {
            try
            {
                while (true)
                {
                    byte[] p = t.Receive();
                    if (p == null) return "end of stream";
                    IMessage m = codec.Decode(p);
                    if (m != null) Handle(t, m);
                }
            }
            catch (Exception e)
            {
                return e.Message;
            }
        }

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
            // The write lock first: a Send from the game waits until the resend is out.
            lock (writeLock)
            {
                List<byte[]> resend;
                int attempts;
                lock (sync)
                {
                    if (state != State.Resuming) return;
                    token = r.Token;
                    kept.RemoveAll(k => k.Seq <= r.LastSeq);
                    state = State.Live;
                    attempts = attempt;
                    attempt = 0;
                    resend = kept.ConvertAll(k => k.Payload);
                }
                try
                {
                    foreach (var p in resend) t.Send(p);
                }
                catch (Exception)
                {
                    t.Close(false);
                }
                inbox.Enqueue(new ResumedEvent { Attempts = attempts, LastSeq = r.LastSeq, Resent = resend.Count });
            }
        }

        /// <summary>
        /// The first payload on a new connection (LL_Resume, or LL_SessionStart followed by
        /// what the game sent meanwhile, numbered from 1 in the new session).
        /// </summary>
        void Begin(ITransport t, byte[] first)
        {
            lock (writeLock)
            {
                List<byte[]> pending = null;
                lock (sync)
                {
                    if (state == State.Starting)
                    {
                        pending = kept.ConvertAll(k => k.Payload);
                        startedWrites = pending.Count > 0;
                    }
                }
                try
                {
                    t.Send(first);
                    if (pending != null) foreach (var p in pending) t.Send(p);
                }
                catch (Exception)
                {
                    t.Close(false);
                }
            }
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
                state = t != null ? State.Starting : State.Down;
            }
            if (t != null) Begin(t, codec.Encode(new LL_SessionStart()));
            inbox.Enqueue(new SessionLostEvent { Reason = reason });
        }

        void SendAck(ITransport t)
        {
            ulong seq;
            lock (sync)
            {
                seq = received;
                acked = seq;
                ackedAt = DateTime.UtcNow;
            }
            Write(t, codec.Encode(new LL_Ack { Seq = seq }));
        }

        /// <summary>After a drop: attempts with backoff until one connects; false once closed.</summary>
        bool Reconnect(string cause)
        {
            bool quick;
            lock (sync)
            {
                if (state == State.Live) dropAt = DateTime.UtcNow;
                else if (state == State.Resuming) at = (at + 1) % addresses.Length;
                quick = moving;
                moving = false;
                moveAt = DateTime.MaxValue;
                // A fresh session that was never answered: what went out in it may be lost.
                bool lost = state == State.Starting && startedWrites;
                state = State.Down;
                if (lost) { kept.Clear(); sent = 0; inbox.Enqueue(new SessionLostEvent { Reason = "unknown" }); }
            }
            while (true)
            {
                attempt++;
                int cap = (int)Math.Min(options.MaxDelayMs, (long)options.InitialDelayMs << Math.Min(attempt - 1, 20));
                int delay = quick ? 0 : random.Next(0, Math.Max(1, cap));
                quick = false;
                inbox.Enqueue(new ReconnectingEvent { Attempt = attempt, DelayMs = delay, Address = Address, Cause = cause });
                if (closing.WaitOne(delay)) return false;
                bool expired;
                lock (sync) expired = token != null && (DateTime.UtcNow - dropAt).TotalSeconds >= windowS;
                if (expired) LoseSession("expired", null);
                ITransport t;
                try
                {
                    t = Transports.Open(Address, options);
                }
                catch (Exception e)
                {
                    cause = e.Message;
                    lock (sync) at = (at + 1) % addresses.Length;
                    continue;
                }
                byte[] first;
                lock (sync)
                {
                    if (closed) { t.Close(true); return false; }
                    transport = t;
                    if (token != null)
                    {
                        state = State.Resuming;
                        resumeSentAt = DateTime.UtcNow;
                        acked = received;
                        first = codec.Encode(new LL_Resume { Token = token, LastSeq = received });
                    }
                    else
                    {
                        state = State.Starting;
                        first = codec.Encode(new LL_SessionStart());
                    }
                }
                Begin(t, first);
                return true;
            }
        }

        void Tick()
        {
            while (!closing.WaitOne(50))
            {
                ITransport t;
                bool ack, timeout, move = false;
                lock (sync)
                {
                    t = transport;
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
                if (t == null) continue;
                if (ack || move) SendAck(t);
                if (timeout || move) t.Close(false);
            }
        }
    }
}
