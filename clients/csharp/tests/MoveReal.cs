// LL_Move from a real draining gate (run by csharp_client.rs's
// the_csharp_client_moves_off_a_draining_gate: two chat nodes with gates in a cluster over a
// real nats-server). A resumable client `a` on gate one, with gate two next in its
// addresses, watches a room; `b` on gate two streams to the room. After 100 messages the
// program asks the test to stop gate one ("CTL stop one"): the gate drains and tells `a`
// LL_Move; `a` moves to gate two and resumes there. Every room message arrives once and in
// order, and the private messages `a` sends to `b` around the move are each handled once.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Threading;
using Chat;
using Longlink;

static partial class ChatTests
{
    public static void RunMove(string[] args)
    {
        ParseArgs(args);
        string one = arg["one"], two = arg["two"];
        var a = Connect(WireEncoding.Json, true, one, two);
        var b = Connect(WireEncoding.Json, false, two);
        var attempts = new List<ReconnectingEvent>();
        a.C.Reconnecting += e => attempts.Add(e);
        ulong ua = LoginWhenServed(a, arg["token_a"]), ub = LoginWhenServed(b, arg["token_b"]);
        const ulong room = 31;
        Watch(a, room);
        var seen = new List<string>();
        int sent = 0, resumedAt = -1, privSent = 0, privGot = 0;
        var sw = Stopwatch.StartNew();
        while (sent < 6000 && (resumedAt < 0 || sent < resumedAt + 300))
        {
            if (sw.ElapsedMilliseconds > 120000) throw new Exception("no resume on gate two: " + a.Resumed + " resumes, " + sent + " sent");
            for (int j = sent; j < sent + 10; j++) b.C.Send(new C2S_Message { RoomId = room, Text = "m" + j });
            sent += 10;
            if (sent == 100) Control("stop", "one");
            if (sent % 50 == 0) a.C.Send(new C2S_Message { ToUid = ub, Text = "p" + privSent++ });
            if (resumedAt < 0 && a.Resumed > 0) { resumedAt = sent; Console.WriteLine("resumed on " + a.C.Address + " after " + sent + " sent, " + seen.Count + " seen, " + privGot + " of " + privSent + " private"); }
            a.C.Poll(m => Said(m, ub, room, seen));
            b.C.Poll(m => privGot = CountPrivate(m, ua, privGot, privSent));
            Thread.Sleep(10);
        }
        var rest = Stopwatch.StartNew();
        while (seen.Count < sent || privGot < privSent)
        {
            if (rest.ElapsedMilliseconds > 60000) throw new Exception("timed out waiting for every message (" + seen.Count + " of " + sent + " room, " + privGot + " of " + privSent + " private; " + a.Resumed + " resumes, " + a.Reconnecting + " attempts, " + a.Lost + " lost)");
            a.C.Poll(m => Said(m, ub, room, seen));
            b.C.Poll(m => privGot = CountPrivate(m, ua, privGot, privSent));
            Thread.Sleep(5);
        }
        // Nothing more comes (no duplicates).
        var quiet = Stopwatch.StartNew();
        while (quiet.ElapsedMilliseconds < 500)
        {
            a.C.Poll(m => Said(m, ub, room, seen));
            b.C.Poll(m => privGot = CountPrivate(m, ua, privGot, privSent));
            Thread.Sleep(5);
        }
        Check.That(resumedAt > 0, "resumed while the room streamed");
        Check.Equal(a.Resumed, 1, "one resume");
        Check.That(attempts.Count == 1 && attempts[0].Moved && attempts[0].Address == two, "one attempt, after LL_Move, to gate two");
        Check.Equal(a.Lost, 0, "the session was never lost");
        Check.Equal(a.C.Address, two, "the client is on gate two");
        Check.Equal(seen.Count, sent, "room messages");
        for (int i = 0; i < sent; i++) Check.Equal(seen[i], "m" + i, "room message " + i);
        Check.Equal(privGot, privSent, "private messages");
        Console.WriteLine("LL_Move from a draining gate (" + one.Substring(0, one.IndexOf(':')) + "): moved to gate two, resumed; " + sent + " room messages and " + privSent + " private ones, each once and in order");
        a.C.Close();
        b.C.Close();
        Console.WriteLine("move: all passed");
    }

    static void Said(IMessage m, ulong from, ulong room, List<string> seen)
    {
        var s = m as S2C_Message;
        if (s != null && s.RoomId == room && s.FromUid == from) seen.Add(s.Text);
        var e = m as S2C_Error;
        if (e != null) Console.WriteLine("a got S2C_Error " + e.Code + " " + e.Msg);
    }

    /// Logs in, again while no chat node serves yet (S2C_Error code 5: a node that just
    /// started may not have joined the cluster).
    static ulong LoginWhenServed(Peer p, string token)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            p.C.Send(new C2S_UserLogin { Token = token, LoginPlat = 0 });
            IMessage answer = null;
            p.Until(() => (answer = p.Got.Find(m => m is S2C_UserLogin || m is S2C_Error)) != null, "the login's answer");
            p.Got.Remove(answer);
            var login = answer as S2C_UserLogin;
            if (login != null && login.Ret == 1) return login.Uid;
            var err = answer as S2C_Error;
            if (err == null || err.Code != 5 || sw.ElapsedMilliseconds > 15000) throw new Exception("login: " + answer.MessageName);
            Thread.Sleep(50);
        }
    }
}
