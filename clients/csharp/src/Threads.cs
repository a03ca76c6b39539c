// The client with threads of its own: a reader (messages in, and after a drop the attempts
// with their backoff), a writer (the outbox out, so that a full socket blocks it and never
// the game), and with Resume a ticker (TickOnce every 50 ms).
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Threading;

namespace Longlink
{
    public sealed partial class Client
    {
        bool writerDone;
        readonly List<Thread> threads = new List<Thread>();
        readonly ManualResetEvent writerExited = new ManualResetEvent(false);

        /// <summary>Opens the first address that answers, starts the threads, waits for the session.</summary>
        void ConnectWithThreads()
        {
            var errors = new List<string>();
            IBlockingTransport t = null;
            for (int i = 0; i < addresses.Length && t == null; i++)
            {
                try
                {
                    t = Transports.Open(addresses[i], options);
                    at = i;
                }
                catch (Exception e) when (e is IOException || e is TimeoutException || e is System.Net.Sockets.SocketException)
                {
                    errors.Add(e.Message);
                }
            }
            if (t == null) throw new IOException("cannot connect: " + string.Join("; ", errors.ToArray()));
            state = options.Resume ? State.Down : State.Plain;
            Attach(t);
            Start(Run, "longlink reader");
            Start(WriteAll, "longlink writer");
            if (options.Resume) Start(Tick, "longlink ticker");
            if (options.Resume && !sessionReady.WaitOne(options.ConnectTimeoutMs))
            {
                Close();
                throw new IOException("no LL_Session from " + addresses[at] + " (is [gate] resume_window set?)");
            }
        }

        void Start(ThreadStart run, string name)
        {
            var thread = new Thread(run) { IsBackground = true, Name = name };
            lock (threads) threads.Add(thread);
            thread.Start();
        }

        /// <summary>Close's wait: each of the client's threads ends, within CloseWaitMs in all.</summary>
        void JoinThreads()
        {
            var waited = Stopwatch.StartNew();
            Thread[] all;
            lock (threads) all = threads.ToArray();
            foreach (var thread in all)
            {
                if (thread == Thread.CurrentThread) continue;
                long left = options.CloseWaitMs - waited.ElapsedMilliseconds;
                if (left <= 0 || !thread.Join((int)left)) return;
            }
        }

        void Run()
        {
            while (true)
            {
                ITransport t;
                lock (sync) t = transport;
                string cause = ReadAll((IBlockingTransport)t);
                t.Close(false);
                bool quick;
                bool goOn = Dropped(t, out quick);
                if (closing.WaitOne(0)) { End("closed"); return; }
                if (!goOn) { End(cause); return; }
                if (!Reconnect(cause, quick)) { End("closed"); return; }
            }
        }

        /// <summary>The last word: Closed, and the writer stops.</summary>
        void End(string reason)
        {
            lock (sync)
            {
                closed = true;
                writerDone = true;
                Monitor.PulseAll(sync);
            }
            inbox.Enqueue(new ClosedEvent { Reason = reason });
        }

        /// <summary>Reads until the connection ends; returns why it ended.</summary>
        string ReadAll(IBlockingTransport t)
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

        /// <summary>After a drop: attempts with backoff until one connects; false once closed.</summary>
        bool Reconnect(string cause, bool quick)
        {
            while (true)
            {
                int delay = PlanAttempt(ref quick, cause);
                if (closing.WaitOne(delay)) return false;
                CheckExpired();
                IBlockingTransport t;
                try
                {
                    t = Transports.Open(Address, options);
                }
                catch (Exception e)
                {
                    cause = e.Message;
                    NextAddress();
                    continue;
                }
                if (!Attach(t)) { t.Close(true); return false; }
                return true;
            }
        }

        /// <summary>The writer: the outbox's payloads to their connection, in order.</summary>
        void WriteAll()
        {
            try
            {
                WriteUntilDone();
            }
            finally
            {
                writerExited.Set();
            }
        }

        void WriteUntilDone()
        {
            while (true)
            {
                Out o;
                lock (sync)
                {
                    while (outbox.Count == 0 || outbox.Peek().T == null)
                    {
                        if (writerDone) return;
                        Monitor.Wait(sync);
                    }
                    o = outbox.Dequeue();
                    // A payload for a connection gone: moot (with Resume it is kept for the resend).
                    if (o.Close == 0 && o.T != transport) continue;
                }
                if (o.Close != 0) { o.T.Close(o.Close == 2); continue; }
                try
                {
                    ((IBlockingTransport)o.T).Send(o.Payload);
                }
                catch (Exception)
                {
                    o.T.Close(false);
                }
            }
        }

        /// <summary>
        /// Close's goodbye waits for the writer; a writer still blocked after ConnectTimeoutMs is cut
        /// short. A background thread of its own, not a timer: Mono aborts its timer thread at exit,
        /// and an abort while that thread sorts its timers is an unhandled exception.
        /// </summary>
        void CloseLater(ITransport t)
        {
            Start(() =>
            {
                if (!writerExited.WaitOne(options.ConnectTimeoutMs)) t.Close(false);
            }, "longlink close");
        }

        void Tick()
        {
            while (!closing.WaitOne(50)) TickOnce();
        }
    }
}
