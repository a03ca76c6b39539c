// The exit right after Close (run many times by csharp_client.rs's
// the_csharp_client_exits_right_after_close): over WebSocket, a resumable client that logs in
// and a plain one, both closed, and the program ends at once, by returning from Main (as a
// console app or a game does; end=return) or by Environment.Exit (end=exit). The process
// must end, with 0.
using Chat;
using Longlink;

static partial class ChatTests
{
    public static void RunExit(string[] args)
    {
        ParseArgs(args);
        var a = Connect(WireEncoding.Json, true, arg["ws"]);
        var b = Connect(WireEncoding.Json, false, arg["ws"]);
        a.C.Send(new C2S_UserLogin { Token = arg["token"], LoginPlat = 0 });
        a.Expect<S2C_UserLogin>(m => m.Ret == 1, "S2C_UserLogin");
        a.C.Close();
        b.C.Close();
        System.Console.WriteLine("exit: closed");
    }
}
