// The session protocol's LL_ messages (crates/longlink-wire/src/resume.md), ids at the top
// of the u16 range, written by hand like generated code.
namespace Longlink
{
    /// <summary>The LL_ messages' names and ids.</summary>
    public static class Protocol
    {
        internal static void AddTo(MessageRegistry r)
        {
            r.Add("LL_Move", 65529, Delivery.Reliable, () => new LL_Move());
            r.Add("LL_SessionStart", 65530, Delivery.Reliable, () => new LL_SessionStart());
            r.Add("LL_Session", 65531, Delivery.Reliable, () => new LL_Session());
            r.Add("LL_Resume", 65532, Delivery.Reliable, () => new LL_Resume());
            r.Add("LL_Resumed", 65533, Delivery.Reliable, () => new LL_Resumed());
            r.Add("LL_ResumeRefused", 65534, Delivery.Reliable, () => new LL_ResumeRefused());
            r.Add("LL_Ack", 65535, Delivery.Reliable, () => new LL_Ack());
        }

        /// <summary>Whether a name is one of the protocol's (not the application's).</summary>
        public static bool IsProtocol(string name) { return name.StartsWith("LL_", System.StringComparison.Ordinal); }
    }

    /// <summary>Server → client: move to the next address after <c>AfterMs</c> and resume there.</summary>
    public sealed class LL_Move : IMessage
    {
        /// <summary>Milliseconds to wait.</summary>
        public uint AfterMs;
        string IMessage.MessageName { get { return "LL_Move"; } }
        void IMessage.WriteJson(JsonWriter w) { w.BeginObject(); w.Key("after_ms"); w.Value((long)AfterMs); w.EndObject(); }
        void IMessage.ReadJson(JsonObject o) { AfterMs = Json.UInt(Json.Get(o, "after_ms")); }
        void IMessage.WriteProto(ProtoWriter w) { if (AfterMs != 0) { w.Tag(1, 0); w.UInt32(AfterMs); } }
        void IMessage.ReadProto(ProtoReader r)
        {
            while (!r.Done) { int t; int n = r.Tag(out t); if (n == 1 && t == 0) AfterMs = r.UInt32(); else r.Skip(t); }
        }
    }

    /// <summary>Client → server: make this connection's session resumable.</summary>
    public sealed class LL_SessionStart : IMessage
    {
        string IMessage.MessageName { get { return "LL_SessionStart"; } }
        void IMessage.WriteJson(JsonWriter w) { w.BeginObject(); w.EndObject(); }
        void IMessage.ReadJson(JsonObject o) { }
        void IMessage.WriteProto(ProtoWriter w) { }
        void IMessage.ReadProto(ProtoReader r) { while (!r.Done) { int t; r.Tag(out t); r.Skip(t); } }
    }

    /// <summary>A token and a number (LL_Resume, LL_Resumed).</summary>
    public abstract class TokenSeq : IMessage
    {
        /// <summary>The session's token.</summary>
        public string Token = "";
        /// <summary>The last message received (LL_Resume) or handled (LL_Resumed).</summary>
        public ulong LastSeq;
        /// <summary>The registered name.</summary>
        public abstract string MessageName { get; }
        void IMessage.WriteJson(JsonWriter w) { w.BeginObject(); w.Key("token"); w.Value(Token); w.Key("last_seq"); w.Value(LastSeq); w.EndObject(); }
        void IMessage.ReadJson(JsonObject o) { Token = Json.String(Json.Get(o, "token")); LastSeq = Json.ULong(Json.Get(o, "last_seq")); }
        void IMessage.WriteProto(ProtoWriter w)
        {
            if (Token.Length > 0) { w.Tag(1, 2); w.String(Token); }
            if (LastSeq != 0) { w.Tag(2, 0); w.UInt64(LastSeq); }
        }
        void IMessage.ReadProto(ProtoReader r)
        {
            while (!r.Done)
            {
                int t; int n = r.Tag(out t);
                if (n == 1 && t == 2) Token = r.String();
                else if (n == 2 && t == 0) LastSeq = r.UInt64();
                else r.Skip(t);
            }
        }
    }

    /// <summary>Client → server: resume the session of <c>Token</c>.</summary>
    public sealed class LL_Resume : TokenSeq
    {
        /// <summary>"LL_Resume".</summary>
        public override string MessageName { get { return "LL_Resume"; } }
    }

    /// <summary>Server → client: resumed, with a new token.</summary>
    public sealed class LL_Resumed : TokenSeq
    {
        /// <summary>"LL_Resumed".</summary>
        public override string MessageName { get { return "LL_Resumed"; } }
    }

    /// <summary>Server → client: the session, its token and window.</summary>
    public sealed class LL_Session : IMessage
    {
        /// <summary>The token to resume with.</summary>
        public string Token = "";
        /// <summary>Seconds the server keeps the session after a drop.</summary>
        public uint WindowS;
        string IMessage.MessageName { get { return "LL_Session"; } }
        void IMessage.WriteJson(JsonWriter w) { w.BeginObject(); w.Key("token"); w.Value(Token); w.Key("window_s"); w.Value((long)WindowS); w.EndObject(); }
        void IMessage.ReadJson(JsonObject o) { Token = Json.String(Json.Get(o, "token")); WindowS = Json.UInt(Json.Get(o, "window_s")); }
        void IMessage.WriteProto(ProtoWriter w)
        {
            if (Token.Length > 0) { w.Tag(1, 2); w.String(Token); }
            if (WindowS != 0) { w.Tag(2, 0); w.UInt32(WindowS); }
        }
        void IMessage.ReadProto(ProtoReader r)
        {
            while (!r.Done)
            {
                int t; int n = r.Tag(out t);
                if (n == 1 && t == 2) Token = r.String();
                else if (n == 2 && t == 0) WindowS = r.UInt32();
                else r.Skip(t);
            }
        }
    }

    /// <summary>Server → client: the resume is refused ("retry", or the session is gone).</summary>
    public sealed class LL_ResumeRefused : IMessage
    {
        /// <summary>"unknown", "expired", "replaced", "overflow" or "retry".</summary>
        public string Reason = "";
        string IMessage.MessageName { get { return "LL_ResumeRefused"; } }
        void IMessage.WriteJson(JsonWriter w) { w.BeginObject(); w.Key("reason"); w.Value(Reason); w.EndObject(); }
        void IMessage.ReadJson(JsonObject o) { Reason = Json.String(Json.Get(o, "reason")); }
        void IMessage.WriteProto(ProtoWriter w) { if (Reason.Length > 0) { w.Tag(1, 2); w.String(Reason); } }
        void IMessage.ReadProto(ProtoReader r)
        {
            while (!r.Done) { int t; int n = r.Tag(out t); if (n == 1 && t == 2) Reason = r.String(); else r.Skip(t); }
        }
    }

    /// <summary>Both ways: "I have everything up to <c>Seq</c>".</summary>
    public sealed class LL_Ack : IMessage
    {
        /// <summary>The last message received.</summary>
        public ulong Seq;
        string IMessage.MessageName { get { return "LL_Ack"; } }
        void IMessage.WriteJson(JsonWriter w) { w.BeginObject(); w.Key("seq"); w.Value(Seq); w.EndObject(); }
        void IMessage.ReadJson(JsonObject o) { Seq = Json.ULong(Json.Get(o, "seq")); }
        void IMessage.WriteProto(ProtoWriter w) { if (Seq != 0) { w.Tag(1, 0); w.UInt64(Seq); } }
        void IMessage.ReadProto(ProtoReader r)
        {
            while (!r.Done) { int t; int n = r.Tag(out t); if (n == 1 && t == 0) Seq = r.UInt64(); else r.Skip(t); }
        }
    }
}
