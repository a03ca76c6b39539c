// The C# client's test program, run under mono by examples/chat/tests/csharp_client.rs:
//   ChatTests.exe golden PATH/kinds.json
//   ChatTests.exe chat KEY=VALUE...   (the servers' addresses; see ChatTests.cs)
//   ChatTests.exe move KEY=VALUE...   (two gates; see MoveReal.cs)
//   ChatTests.exe webgl KEY=VALUE...  (started by webgl.mjs; see WebGLClient.cs)
//   ChatTests.exe backpressure        (Send against a server that does not read)
//   ChatTests.exe exit ws=URL token=TOKEN end=return|exit   (see ExitAfterClose.cs)
// Exits 0 when every check passes; prints what failed otherwise.
using System;

static class Program
{
    static int Main(string[] args)
    {
        // Returns from Main as a game or a console app does (ExitAfterClose.cs).
        if (Array.IndexOf(args, "end=return") >= 0) return Run(args);
        // A failed check may leave a client's thread blocked: the exit does not wait for it.
        Environment.Exit(Run(args));
        return 0;
    }

    static int Run(string[] args)
    {
        try
        {
            if (args.Length >= 2 && args[0] == "golden") Golden.Run(args[1]);
            else if (args.Length >= 1 && args[0] == "chat") ChatTests.Run(args);
            else if (args.Length >= 1 && args[0] == "move") ChatTests.RunMove(args);
            else if (args.Length >= 1 && args[0] == "webgl") ChatTests.RunWebGL(args);
            else if (args.Length >= 1 && args[0] == "backpressure") Backpressure.Run();
            else if (args.Length >= 1 && args[0] == "exit") ChatTests.RunExit(args);
            else { Console.Error.WriteLine("usage: ChatTests.exe golden FILE | chat KEY=VALUE..."); return 2; }
            return 0;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine("FAILED: " + e);
            return 1;
        }
    }
}
