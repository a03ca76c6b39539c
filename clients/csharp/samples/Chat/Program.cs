// The console sample: logs in to the chat example, watches a room, says hello and prints
// what the room says, in the shape of a game loop (Poll once a frame). Build it with the
// generated messages (longlink-codegen --lang csharp --namespace Chat):
//   mcs -out:chat.exe ../../src/*.cs Messages.cs Program.cs
//   mono chat.exe ws://127.0.0.1:3653/ $(curl -s 'http://127.0.0.1:3653/dev/token?uid=7')
// It stops once it has read its own message back (or after a minute).
using System;
using System.Threading;
using Chat;
using Longlink;

static class Program
{
    static int Main(string[] args)
    {
        var client = Client.Connect(new ClientOptions { Addresses = new[] { args[0] }, Resume = true }, Messages.Registry);
        client.Reconnecting += e => Console.WriteLine("reconnecting… (" + e.Cause + ")");
        client.SessionLost += e => Console.WriteLine("session lost: " + e.Reason + "; log in again");
        client.Send(new C2S_UserLogin { Token = args[1] });
        client.Send(new C2S_UpdateWatchRoom { RoomId = 1 });
        client.Send(new C2S_Message { RoomId = 1, Text = "hello from C#" });
        bool done = false;
        for (int frame = 0; frame < 60 * 60 && !done; frame++)
        {
            client.Poll(m =>
            {
                if (m is S2C_UserLogin login) Console.WriteLine("logged in as " + login.Uid);
                if (m is S2C_Message say) { Console.WriteLine(say.FromUid + ": " + say.Text); done |= say.Text == "hello from C#"; }
            });
            Thread.Sleep(16); // one frame
        }
        client.Close();
        return done ? 0 : 1;
    }
}
