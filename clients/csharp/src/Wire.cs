// A message to and from a frame's payload: JSON `{"Name":{...}}` or protobuf (a u16 id, in
// the LittleEndian setting's byte order, then the body), as leaf's processors do.
using System;
using System.IO;
using System.Text;

namespace Longlink
{
    /// <summary>The payload encoding the server is configured with.</summary>
    public enum WireEncoding
    {
        /// <summary>leaf's JSON processor.</summary>
        Json,
        /// <summary>leaf's protobuf processor.</summary>
        Protobuf,
    }

    /// <summary>Encodes and decodes payloads with a registry.</summary>
    public sealed class WireCodec
    {
        readonly MessageRegistry registry;
        readonly WireEncoding encoding;
        readonly bool littleEndian;

        /// <summary>A codec for one encoding.</summary>
        public WireCodec(MessageRegistry registry, WireEncoding encoding, bool littleEndian)
        {
            this.registry = registry;
            this.encoding = encoding;
            this.littleEndian = littleEndian;
        }

        /// <summary>A message's payload.</summary>
        public byte[] Encode(IMessage m)
        {
            if (encoding == WireEncoding.Json)
            {
                var w = new JsonWriter();
                w.BeginObject();
                w.Key(m.MessageName);
                m.WriteJson(w);
                w.EndObject();
                return Encoding.UTF8.GetBytes(w.ToString());
            }
            ushort id = registry.IdOf(m.MessageName);
            var p = new ProtoWriter();
            if (littleEndian) { p.Raw(new[] { (byte)id, (byte)(id >> 8) }); }
            else { p.Raw(new[] { (byte)(id >> 8), (byte)id }); }
            m.WriteProto(p);
            return p.ToArray();
        }

        /// <summary>A payload's message; null for a message the registry does not know; throws on bad input.</summary>
        public IMessage Decode(byte[] payload)
        {
            if (encoding == WireEncoding.Json)
            {
                var o = Json.Parse(Encoding.UTF8.GetString(payload)) as JsonObject;
                if (o == null || o.Count != 1) throw new InvalidDataException("json: a message is an object with one key");
                foreach (var kv in o)
                {
                    var m = registry.Create(kv.Key);
                    if (m == null) return null;
                    m.ReadJson(kv.Value as JsonObject ?? new JsonObject());
                    return m;
                }
            }
            if (payload.Length < 2) throw new InvalidDataException("protobuf: a message needs its 2-byte id");
            ushort id = littleEndian ? (ushort)(payload[0] | payload[1] << 8) : (ushort)(payload[0] << 8 | payload[1]);
            var msg = registry.Create(id);
            if (msg == null) return null;
            msg.ReadProto(new ProtoReader(payload, 2, payload.Length - 2));
            return msg;
        }

        /// <summary>The delivery class of a message.</summary>
        public Delivery DeliveryOf(IMessage m) { return registry.DeliveryOf(m.MessageName); }
    }
}
