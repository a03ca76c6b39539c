// The threadless client (ClientOptions.Threadless, as in WebGL builds) against the real chat
// server over a real non-blocking TCP socket: Connect returns at once and Poll() does all
// the network's work on this thread. A dead first address, then login, a room, a private
// message; 2,000 room messages through the cutting proxy (each once, in order, private
// messages around the cuts once); SessionLost after the window; Closed when no address
// answers.
using System;
using System.Threading;
using Chat;
using Longlink;

static partial class ChatTests
{
    static bool ThrowsArgument(Action f)
    {
        try { f(); return false; }
        catch (ArgumentException) { return true; }
    }

    static void Threadless()
    {
        foreach (var enc in new[] { WireEncoding.Json, WireEncoding.Protobuf })
        {
            string k = Key(enc);
            var a = Connect(enc, true, true, "tcp://127.0.0.1:1", arg[k + "_tcp"]);
            var b = Connect(enc, false, true, arg[k + "_tcp"]);
            ulong ua = Login(a), ub = Login(b);
            Check.Equal(a.C.Address, arg[k + "_tcp"], "the next address after a dead one");
            Check.That(a.C.SessionToken != null, "a session");
            ulong room = 60 + nextUid;
            Watch(a, room);
            Watch(b, room);
            b.C.Send(new C2S_Message { RoomId = room, Text = "hi" });
            Check.Equal(a.Expect<S2C_Message>(m => m.RoomId == room, "the room message").FromUid, ub, "from_uid");
            a.C.Send(new C2S_Message { ToUid = ub, Text = "psst" });
            Check.Equal(b.Expect<S2C_Message>(m => m.ToUid == ub, "the private message").FromUid, ua, "private from a");
            a.C.Close();
            a.Until(() => a.Closed, "Closed after Close()");
            b.C.Close();
            Console.WriteLine("threadless " + k + " over tcp: a dead first address, login, a room, a private message");
        }
        var none = new Peer(Client.Connect(new ClientOptions { Addresses = new[] { "tcp://127.0.0.1:1" }, Threadless = true }, Messages.Registry));
        none.Until(() => none.Closed, "Closed when no address answers");
        Check.That(ThrowsArgument(() => Client.Connect(new ClientOptions { Addresses = new[] { arg["pb_tcp"], arg["pb_ws"] }, Threadless = true }, Messages.Registry)),
            "a threadless client outside WebGL takes tcp:// only, and says so at Connect");
        Stream("threadless_pb", WireEncoding.Protobuf, arg["pb_tcp"], true);
        Lost(true);
    }
}
