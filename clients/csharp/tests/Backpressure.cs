// Send never blocks the caller's thread: against a server that accepts and never reads
// (a TcpListener of this process), Send returns each time, the messages wait in the
// client's bounded queue, and once MaxQueuedSends wait Send throws SendQueueFullException.
// When the server reads, every message Send took arrives, once and in order.
using System;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using Chat;
using Longlink;

static class Backpressure
{
    public static void Run()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Server.ReceiveBufferSize = 4096;
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var o = new ClientOptions { Addresses = new[] { "tcp://127.0.0.1:" + port }, MaxQueuedSends = 64 };
        Client c = null;
        var connecting = new Thread(() => c = Client.Connect(o, Messages.Registry)) { IsBackground = true };
        connecting.Start();
        var server = listener.AcceptTcpClient();
        Check.That(connecting.Join(10000), "Connect returns");
        listener.Stop();

        string text = new string('x', 20000);
        int sent = 0;
        Exception full = null;
        var game = new Thread(() =>
        {
            try { for (; sent < 100000; sent++) c.Send(new C2S_Message { RoomId = 1, Text = text + sent }); }
            catch (Exception e) { full = e; }
        }) { IsBackground = true };
        game.Start();
        Check.That(game.Join(60000), "Send returns while the server does not read (it took " + sent + ")");
        Check.That(full is SendQueueFullException, "Send says the queue is full: " + full);
        Console.WriteLine("backpressure: Send took " + sent + " messages, then " + full.Message);

        // The server reads: each message Send took, in order; then one more.
        var stream = server.GetStream();
        stream.ReadTimeout = 20000;
        for (int i = 0; i < sent; i++) Check.Equal(ReadText(stream), text + i, "message " + i);
        c.Send(new C2S_Message { RoomId = 1, Text = "last" });
        Check.Equal(ReadText(stream), "last", "a Send after the queue drained");
        c.Close();
        server.Close();
        Console.WriteLine("backpressure: all " + sent + " arrived in order once the server read");
    }

    static string ReadText(Stream s)
    {
        var header = ReadFull(s, 2);
        var body = ReadFull(s, header[0] << 8 | header[1]);
        var m = (JsonObject)Json.Parse(Encoding.UTF8.GetString(body));
        return Json.String(Json.Get(Json.Obj(Json.Get(m, "C2S_Message")), "text"));
    }

    static byte[] ReadFull(Stream s, int n)
    {
        var b = new byte[n];
        for (int got = 0; got < n;)
        {
            int r = s.Read(b, got, n - got);
            if (r <= 0) throw new EndOfStreamException("the client's connection ended");
            got += r;
        }
        return b;
    }
}
