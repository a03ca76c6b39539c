// The client against the real chat server (started by examples/chat/tests/csharp_client.rs,
// which passes its addresses as KEY=VALUE arguments): JSON and protobuf over TCP and
// WebSocket; login, rooms, private messages; a resumable session through a proxy that cuts
// it at random points while a room streams 2,000 messages (each once, in order; private
// messages sent around the cuts each handled once, in order); SessionLost after the window.
// The proxies belong to the Rust test: this program asks for cuts with a line on stdout
// ("CTL cuts NAME", "CTL calm NAME", "CTL down NAME") and waits for its "OK" on stdin.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Net;
using System.Threading;
using Chat;
using Longlink;

sealed class Peer
{
    public readonly Client C;
    public readonly List<IMessage> Got = new List<IMessage>();
    public int Resumed, Reconnecting, Lost, MovedAttempts;
    public string LostReason;
    public bool Closed;

    public Peer(Client c)
    {
        C = c;
        c.Resumed += e => Resumed++;
        c.Reconnecting += e => { Reconnecting++; if (e.Moved) MovedAttempts++; };
        c.SessionLost += e => { Lost++; LostReason = e.Reason; };
        c.Closed += e => Closed = true;
    }

    /// What a game's Update() does.
    public void Pump() { C.Poll(m => Got.Add(m)); }

    public T Expect<T>(Func<T, bool> match, string what, int ms = 15000) where T : class, IMessage
    {
        var sw = Stopwatch.StartNew();
        while (sw.ElapsedMilliseconds < ms)
        {
            Pump();
            for (int i = 0; i < Got.Count; i++)
            {
                var m = Got[i] as T;
                if (m != null && match(m)) { Got.RemoveAt(i); return m; }
            }
            Thread.Sleep(2);
        }
        throw new Exception("timed out waiting for " + what);
    }

    public void Until(Func<bool> done, string what, int ms = 15000)
    {
        var sw = Stopwatch.StartNew();
        while (!done())
        {
            if (sw.ElapsedMilliseconds > ms) throw new Exception("timed out waiting for " + what);
            Pump();
            Thread.Sleep(2);
        }
    }
}

static partial class ChatTests
{
    static Dictionary<string, string> arg = new Dictionary<string, string>();
    static ulong nextUid = 500;

    static void ParseArgs(string[] args)
    {
        for (int i = 1; i < args.Length; i++)
        {
            int eq = args[i].IndexOf('=');
            arg[args[i].Substring(0, eq)] = args[i].Substring(eq + 1);
        }
    }

    public static void Run(string[] args)
    {
        ParseArgs(args);
        foreach (var enc in new[] { WireEncoding.Json, WireEncoding.Protobuf })
        {
            foreach (var transport in new[] { "tcp", "ws" }) Basic(enc, transport);
        }
        Addresses();
        Stream("stream_tcp_json", WireEncoding.Json, arg["json_tcp"]);
        Stream("stream_ws_pb", WireEncoding.Protobuf, arg["pb_ws"]);
        Lost(false);
        Move();
        Threadless();
        Console.WriteLine("chat: all passed");
    }

    static string Key(WireEncoding enc) { return enc == WireEncoding.Json ? "json" : "pb"; }

    static string Token(ulong uid)
    {
        using (var web = new WebClient()) return web.DownloadString("http://" + arg["http"] + "/dev/token?uid=" + uid).Trim();
    }

    static Peer Connect(WireEncoding enc, bool resume, params string[] addresses)
    {
        return Connect(enc, resume, false, addresses);
    }

    static Peer Connect(WireEncoding enc, bool resume, bool threadless, params string[] addresses)
    {
        var o = new ClientOptions { Addresses = addresses, Encoding = enc, Resume = resume, Threadless = threadless };
        return new Peer(Client.Connect(o, Messages.Registry));
    }

    static ulong Login(Peer p)
    {
        ulong uid = nextUid++;
        p.C.Send(new C2S_UserLogin { Token = Token(uid), LoginPlat = 0 });
        var r = p.Expect<S2C_UserLogin>(m => true, "S2C_UserLogin");
        Check.Equal(r.Ret, 1, "login: " + r.Msg);
        Check.Equal(r.Uid, uid, "the uid logged in");
        return uid;
    }

    static uint Watch(Peer p, ulong room)
    {
        p.C.Send(new C2S_UpdateWatchRoom { RoomId = room });
        var w = p.Expect<S2C_UpdateWatchRoom>(m => m.RoomId == room, "S2C_UpdateWatchRoom");
        return w.Online;
    }

    static void Control(string verb, string name)
    {
        Console.WriteLine("CTL " + verb + " " + name);
        Console.Out.Flush();
        string line = Console.In.ReadLine();
        Check.Equal(line, "OK", "the test's answer to CTL " + verb + " " + name);
    }

    static void Basic(WireEncoding enc, string transport)
    {
        string k = Key(enc);
        string mine = arg[k + "_" + transport], other = arg[k + "_" + (transport == "tcp" ? "ws" : "tcp")];
        var a = Connect(enc, false, mine);
        var b = Connect(enc, false, other);
        ulong ua = Login(a), ub = Login(b);
        ulong room = 40 + nextUid;
        Check.Equal(Watch(a, room), 1u, "watchers after a");
        Check.Equal(Watch(b, room), 2u, "watchers after b");

        b.C.Send(new C2S_Message { RoomId = room, Text = "hello ✓" });
        var got = a.Expect<S2C_Message>(m => true, "the room message");
        Check.Equal(got.Text, "hello ✓", "text");
        Check.Equal(got.FromUid, ub, "from_uid");
        Check.Equal(got.RoomId, room, "room_id");
        Check.Equal(b.Expect<S2C_Message>(m => true, "the echo").Text, "hello ✓", "the sender gets its room message too");

        a.C.Send(new C2S_Message { ToUid = ub, Text = "psst" });
        var priv = b.Expect<S2C_Message>(m => m.ToUid == ub, "the private message");
        Check.That(priv.FromUid == ua && priv.Text == "psst", "private message from a: " + priv.FromUid + " " + priv.Text);

        a.C.Send(new C2S_Message { Text = "nowhere" });
        Check.That(a.Expect<S2C_Error>(m => true, "S2C_Error").Code > 0, "an error code");
        a.C.Send(new C2S_UserHeartBeat { Ptime = 1 });
        Check.That(a.Expect<C2S_UserHeartBeat>(m => true, "the heartbeat's answer").Ptime > 1600000000, "server time");

        a.C.Close();
        a.Until(() => a.Closed, "Closed after Close()");
        Check.That(Throws(() => a.C.Send(new C2S_UserHeartBeat())), "Send after Close throws");
        b.C.Close();
        Console.WriteLine("basic " + k + " over " + transport + ": login, a room, a private message, an error, a heartbeat");
    }

    static bool Throws(Action f)
    {
        try { f(); return false; }
        catch (InvalidOperationException) { return true; }
    }

    static void Addresses()
    {
        Check.That(ThrowsIo(() => Client.Connect(new ClientOptions { Addresses = new[] { "tcp://127.0.0.1:1" } }, Messages.Registry)), "no server: Connect throws");
        var p = Connect(WireEncoding.Json, true, "tcp://127.0.0.1:1", arg["json_tcp"]);
        Check.Equal(p.C.Address, arg["json_tcp"], "the next address is tried");
        Check.That(p.C.SessionToken != null, "a session");
        Login(p);
        p.C.Close();
        Console.WriteLine("addresses: a dead first address, then the next");
    }

    static bool ThrowsIo(Action f)
    {
        try { f(); return false; }
        catch (IOException) { return true; }
    }

    /// 2,000 room messages to a resumable watcher behind a cutting proxy; private messages
    /// from it meanwhile.
    static void Stream(string name, WireEncoding enc, string direct, bool threadless = false)
    {
        const int total = 2000, privates = 100;
        var a = Connect(enc, true, threadless, arg[name]);
        ulong ua = Login(a);
        ulong room = 9000 + nextUid;
        Check.Equal(Watch(a, room), 1u, "the watcher alone");
        var b = Connect(enc, false, direct);
        ulong ub = Login(b);
        Control("cuts", name);

        int sent = 0, roomGot = 0, privSent = 0, privGot = 0;
        var sw = Stopwatch.StartNew();
        while (roomGot < total || privGot < privates)
        {
            if (sw.ElapsedMilliseconds > 240000) throw new Exception(name + ": timed out: " + roomGot + " room messages, " + privGot + " private, " + a.Resumed + " resumes");
            while (sent < total && sent < roomGot + 400) b.C.Send(new C2S_Message { RoomId = room, Text = (sent++).ToString() });
            if (privSent < privates && roomGot >= privSent * 15) a.C.Send(new C2S_Message { ToUid = ub, Text = "p" + privSent++ });
            a.C.Poll(m => roomGot = CountRoom(m, ub, room, roomGot, total, a));
            b.C.Poll(m => privGot = CountPrivate(m, ua, privGot, privates));
            Thread.Sleep(1);
        }
        Control("calm", name);
        // A last resume (the proxy cut everything), then nothing more: no duplicates.
        a.C.Send(new C2S_UserHeartBeat { Ptime = 1 });
        var until = Stopwatch.StartNew();
        bool beat = false;
        while (!beat || until.ElapsedMilliseconds < 1000)
        {
            if (until.ElapsedMilliseconds > 20000) throw new Exception(name + ": no heartbeat answer after the last cut");
            a.C.Poll(m => { if (m is C2S_UserHeartBeat) beat = true; else roomGot = CountRoom(m, ub, room, roomGot, total, a); });
            b.C.Poll(m => privGot = CountPrivate(m, ua, privGot, privates));
            Thread.Sleep(2);
        }
        Check.That(a.Resumed >= 3, name + ": only " + a.Resumed + " resumes: the proxy did not cut");
        Check.Equal(a.Lost, 0, name + ": the session was never lost");
        Check.Equal(a.MovedAttempts, 0, name + ": a cut is no LL_Move");
        Console.WriteLine(name + (threadless ? " (threadless)" : "") + ": " + total + " room messages and " + privates + " private ones, each once and in order, through " + a.Resumed + " resumes (" + a.Reconnecting + " attempts)");
        a.C.Close();
        b.C.Close();
    }

    static int CountRoom(IMessage m, ulong from, ulong room, int got, int total, Peer a)
    {
        var s = m as S2C_Message;
        if (s == null || s.RoomId != room || s.FromUid != from) return got;
        Check.That(got < total, "a room message past the last: " + s.Text);
        Check.Equal(s.Text, got.ToString(), "room message " + got + " (after " + a.Resumed + " resumes)");
        return got + 1;
    }

    static int CountPrivate(IMessage m, ulong from, int got, int total)
    {
        var s = m as S2C_Message;
        if (s == null || s.FromUid != from || s.RoomId != 0) return got;
        Check.That(got < total, "a private message past the last: " + s.Text);
        Check.Equal(s.Text, "p" + got, "private message " + got);
        return got + 1;
    }

    /// LL_Move from a scripted server (which also sends volatile messages, which are not
    /// counted: its LL_Ack says 1): the client acknowledges, moves to the next address
    /// after the delay, resumes there and resends what the first server had not handled.
    static void Move()
    {
        var registry = Messages.Registry.Add("S2C_Noise", 200, Delivery.Volatile, () => new S2C_Noise());
        var o = new ClientOptions { Addresses = new[] { arg["move_a"], arg["move_b"] }, Resume = true };
        var a = new Peer(Client.Connect(o, registry));
        a.C.Send(new C2S_Message { Text = "x" });
        a.Expect<S2C_Message>(m => m.Text == "before", "the first server's message");
        a.Expect<S2C_Noise>(m => true, "a volatile message");
        a.Expect<S2C_Message>(m => m.Text == "after", "the second server's message");
        Check.Equal(a.Resumed, 1, "one resume");
        Check.That(a.MovedAttempts == 1, "the attempt says it follows LL_Move");
        Check.Equal(a.C.Address, arg["move_b"], "the address moved to");
        Check.Equal(a.C.SessionToken, "t2", "the new token");
        a.C.Close();
        Console.WriteLine("LL_Move: moved to the next address, resumed, resent");
    }

    /// The window lapses while the client cannot reach the server: SessionLost, then a
    /// fresh session on which the game logs in again.
    static void Lost(bool threadless)
    {
        var a = Connect(WireEncoding.Json, true, threadless, arg["short"]);
        Login(a);
        Control("down", "short");
        a.Until(() => a.Lost > 0, "SessionLost", 30000);
        Check.That(a.LostReason == "expired" || a.LostReason == "unknown", "reason " + a.LostReason);
        Control("calm", "short");
        a.Until(() => a.C.SessionToken != null, "a fresh session", 15000);
        Login(a);
        Check.That(a.C.SessionToken != null, "a fresh session");
        a.C.Close();
        Console.WriteLine((threadless ? "threadless: " : "") + "session lost after the window (" + a.LostReason + "), then a fresh session and a new login");
    }
}

/// A volatile message of the scripted server's (no fields).
sealed class S2C_Noise : IMessage
{
    string IMessage.MessageName { get { return "S2C_Noise"; } }
    void IMessage.WriteJson(JsonWriter w) { w.BeginObject(); w.EndObject(); }
    void IMessage.ReadJson(JsonObject o) { }
    void IMessage.WriteProto(ProtoWriter w) { }
    void IMessage.ReadProto(ProtoReader r) { }
}
