// The generated code against the server's own encodings: golden/kinds.json (written by
// examples/chat/tests/codegen_golden.rs) holds, for every chat message and messages with
// every kind of field, the bytes prost writes and the JSON serde writes. Each is decoded by
// the generated class and encoded back: the same protobuf bytes, the same JSON document.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Text;
using Longlink;

static class Golden
{
    public static void Run(string path)
    {
        var doc = (JsonObject)Json.Parse(File.ReadAllText(path));
        var registry = Chat.Messages.Registry;
        var pb = new WireCodec(registry, WireEncoding.Protobuf, false);
        var js = new WireCodec(registry, WireEncoding.Json, false);
        var names = new HashSet<string>();
        int n = 0;
        foreach (var s in Json.Arr(Json.Get(doc, "samples")))
        {
            var sample = (JsonObject)s;
            string name = Json.String(Json.Get(sample, "name"));
            string hex = Json.String(Json.Get(sample, "protobuf"));
            string json = Json.String(Json.Get(sample, "json"));
            byte[] bytes = Unhex(hex);
            IMessage fromPb = pb.Decode(bytes);
            Check.That(fromPb != null && fromPb.MessageName == name, name + ": decoded as " + (fromPb == null ? "nothing" : fromPb.MessageName));
            Check.Equal(Hex(pb.Encode(fromPb)), hex, name + ": protobuf decoded and encoded again");
            IMessage fromJson = js.Decode(Encoding.UTF8.GetBytes(json));
            Check.Equal(Hex(pb.Encode(fromJson)), hex, name + ": the server's JSON as protobuf");
            string again = Encoding.UTF8.GetString(js.Encode(fromPb));
            Check.That(Same(Json.Parse(again), Json.Parse(json)), name + ": JSON\n  ours:   " + again + "\n  server: " + json);
            names.Add(name);
            n++;
        }
        foreach (var m in Json.Arr(Json.Get(Json.Obj(Json.Get(doc, "manifest")), "messages")))
        {
            string name = Json.String(Json.Get((JsonObject)m, "name"));
            if (!Protocol.IsProtocol(name)) Check.That(names.Contains(name), "no golden sample of " + name);
        }
        Console.WriteLine("golden: " + n + " samples of " + names.Count + " messages round-trip");
    }

    /// Two JSON trees are the same document (numbers by value; a float's digits may differ).
    static bool Same(object a, object b)
    {
        if (a == null || b == null) return a == null && b == null;
        var na = a as JsonNumber;
        var nb = b as JsonNumber;
        if (na != null || nb != null)
        {
            if (na == null || nb == null) return false;
            if (na.Text == nb.Text) return true;
            double x = Json.Double(na), y = Json.Double(nb);
            return x == y || (float)x == (float)y;
        }
        var oa = a as JsonObject;
        if (oa != null)
        {
            var ob = b as JsonObject;
            if (ob == null || ob.Count != oa.Count) return false;
            foreach (var kv in oa)
            {
                object v;
                if (!ob.TryGetValue(kv.Key, out v) || !Same(kv.Value, v)) return false;
            }
            return true;
        }
        var la = a as List<object>;
        if (la != null)
        {
            var lb = b as List<object>;
            if (lb == null || lb.Count != la.Count) return false;
            for (int i = 0; i < la.Count; i++) if (!Same(la[i], lb[i])) return false;
            return true;
        }
        return a.Equals(b);
    }

    public static byte[] Unhex(string s)
    {
        var b = new byte[s.Length / 2];
        for (int i = 0; i < b.Length; i++) b[i] = byte.Parse(s.Substring(2 * i, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        return b;
    }

    public static string Hex(byte[] b)
    {
        var sb = new StringBuilder();
        foreach (byte x in b) sb.Append(x.ToString("x2"));
        return sb.ToString();
    }
}

static class Check
{
    public static void That(bool ok, string what)
    {
        if (!ok) throw new Exception("check failed: " + what);
    }

    public static void Equal<T>(T got, T want, string what)
    {
        if (!EqualityComparer<T>.Default.Equals(got, want)) throw new Exception("check failed: " + what + ": got " + got + ", want " + want);
    }
}
