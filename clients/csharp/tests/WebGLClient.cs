// The threadless Client over WebGLSocket over longlink.jslib in Chromium: what a WebGL
// build runs, except that the C# runs under Mono and WebGLSocket's bridge calls are relayed,
// one line each, to a browser page that has the .jslib loaded (webgl.mjs starts this
// program with `webgl KEY=VALUE...` and answers each line on stdin; logs go to stderr).
// The page drops the sockets at random moments while a room streams to the client (a
// close with 4000, a drop to the server): the client resumes each time, every room message
// arrives once and in order, and its private messages around the drops are handled once.
using System;
using System.Diagnostics;
using System.Threading;
using Chat;
using Longlink;

/// IBrowserWebSockets over stdin/stdout: `open URL`, `state ID`, ...; bytes in base64.
sealed class Relay : IBrowserWebSockets
{
    public int Calls;

    static string Call(string line)
    {
        Console.Out.Write(line + "\n");
        Console.Out.Flush();
        string answer = Console.In.ReadLine();
        if (answer == null) throw new Exception("the page's relay ended");
        return answer;
    }

    int Int(string line) { Calls++; return int.Parse(Call(line)); }

    public int Open(string url) { return Int("open " + url); }
    public int State(int id) { return Int("state " + id); }
    public int CloseCode(int id) { return Int("code " + id); }
    public int Send(int id, byte[] data, int len) { return Int("send " + id + " " + Convert.ToBase64String(data, 0, len)); }
    public int NextLength(int id) { return Int("next " + id); }

    public int Receive(int id, byte[] data, int len)
    {
        Calls++;
        var b = Convert.FromBase64String(Call("recv " + id + " " + len));
        Buffer.BlockCopy(b, 0, data, 0, Math.Min(len, b.Length));
        return b.Length;
    }

    public void Close(int id, int code) { Int("close " + id + " " + code); }

    /// The page's random drops on or off.
    public void Cuts(bool on) { Call("cuts " + (on ? 1 : 0)); }
}

static partial class ChatTests
{
    public static void RunWebGL(string[] args)
    {
        ParseArgs(args);
        var relay = new Relay();
        var o = new ClientOptions
        {
            Addresses = new[] { arg["ws"] },
            Resume = true,
            Threadless = true,
            OpenPolled = url => new WebGLSocket(url, relay),
        };
        var a = new Peer(Client.Connect(o, Messages.Registry));
        var b = Connect(WireEncoding.Json, false, arg["tcp"]);
        ulong ua = LoginWhenServed(a, arg["token_a"]), ub = LoginWhenServed(b, arg["token_b"]);
        const ulong room = 88;
        Watch(a, room);
        relay.Cuts(true);
        const int total = 300, privates = 20;
        int sent = 0, roomGot = 0, privSent = 0, privGot = 0;
        var sw = Stopwatch.StartNew();
        while (roomGot < total || privGot < privates)
        {
            if (sw.ElapsedMilliseconds > 240000) throw new Exception("webgl: timed out: " + roomGot + " room messages, " + privGot + " private, " + a.Resumed + " resumes");
            while (sent < total && sent < roomGot + 50) b.C.Send(new C2S_Message { RoomId = room, Text = (sent++).ToString() });
            if (privSent < privates && roomGot >= privSent * 15) a.C.Send(new C2S_Message { ToUid = ub, Text = "p" + privSent++ });
            a.C.Poll(m => roomGot = CountRoom(m, ub, room, roomGot, total, a));
            b.C.Poll(m => privGot = CountPrivate(m, ua, privGot, privates));
            Thread.Sleep(5);
        }
        relay.Cuts(false);
        var quiet = Stopwatch.StartNew();
        while (quiet.ElapsedMilliseconds < 1000)
        {
            a.C.Poll(m => roomGot = CountRoom(m, ub, room, roomGot, total, a));
            b.C.Poll(m => privGot = CountPrivate(m, ua, privGot, privates));
            Thread.Sleep(5);
        }
        Check.That(a.Resumed >= 2, "webgl: only " + a.Resumed + " resumes: the page did not drop the sockets");
        Check.Equal(a.Lost, 0, "webgl: the session was never lost");
        a.C.Close();
        a.Until(() => a.Closed, "Closed after Close()");
        b.C.Close();
        Console.Error.WriteLine("webgl client: " + total + " room messages and " + privates + " private ones, each once and in order, through " + a.Resumed + " resumes over the .jslib (" + relay.Calls + " bridge calls)");
        Console.Out.Write("done\n");
        Console.Out.Flush();
    }
}
