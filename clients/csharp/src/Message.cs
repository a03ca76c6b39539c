// What a message is to the client (IMessage, written by longlink-codegen for every message)
// and the table of messages by name and id (MessageRegistry; the generated
// `Messages.Registry` fills one). No reflection: every message reads and writes itself.
using System;
using System.Collections.Generic;

namespace Longlink
{
    /// <summary>A message: generated code that writes and reads itself in both encodings.</summary>
    public interface IMessage
    {
        /// <summary>The registered name (the JSON key).</summary>
        string MessageName { get; }
        /// <summary>Writes the body (a JSON object) to <paramref name="w"/>.</summary>
        void WriteJson(JsonWriter w);
        /// <summary>Reads the body from a parsed JSON object.</summary>
        void ReadJson(JsonObject o);
        /// <summary>Writes the protobuf body to <paramref name="w"/>.</summary>
        void WriteProto(ProtoWriter w);
        /// <summary>Reads the protobuf body from <paramref name="r"/>.</summary>
        void ReadProto(ProtoReader r);
    }

    /// <summary>How the server delivers a message (the manifest's <c>delivery</c>).</summary>
    public enum Delivery
    {
        /// <summary>Numbered, acknowledged, replayed on resume.</summary>
        Reliable,
        /// <summary>Not numbered, never replayed; may be dropped for a slow client.</summary>
        Volatile,
        /// <summary>Numbered; a client that is behind gets the latest value.</summary>
        Latest,
    }

    /// <summary>Messages by name and id, each with a constructor of its class.</summary>
    public sealed class MessageRegistry
    {
        sealed class Entry
        {
            public string Name;
            public ushort Id;
            public Delivery Delivery;
            public Func<IMessage> Create;
        }

        readonly Dictionary<string, Entry> byName = new Dictionary<string, Entry>();
        readonly Dictionary<ushort, Entry> byId = new Dictionary<ushort, Entry>();

        /// <summary>A registry that knows the protocol's LL_ messages.</summary>
        public MessageRegistry()
        {
            Protocol.AddTo(this);
        }

        /// <summary>Registers a message; throws if its name or id is taken.</summary>
        public MessageRegistry Add(string name, ushort id, Delivery delivery, Func<IMessage> create)
        {
            if (byName.ContainsKey(name)) throw new ArgumentException("message " + name + " is registered twice");
            if (byId.ContainsKey(id)) throw new ArgumentException("message id " + id + " is registered twice");
            var e = new Entry { Name = name, Id = id, Delivery = delivery, Create = create };
            byName[name] = e;
            byId[id] = e;
            return this;
        }

        /// <summary>The id of a registered name; throws for an unknown one.</summary>
        public ushort IdOf(string name)
        {
            Entry e;
            if (!byName.TryGetValue(name, out e)) throw new ArgumentException("message " + name + " is not registered");
            return e.Id;
        }

        /// <summary>The delivery class of a name (reliable for an unknown one).</summary>
        public Delivery DeliveryOf(string name)
        {
            Entry e;
            return byName.TryGetValue(name, out e) ? e.Delivery : Delivery.Reliable;
        }

        /// <summary>A new, empty message of a registered name, or null.</summary>
        public IMessage Create(string name)
        {
            Entry e;
            return byName.TryGetValue(name, out e) ? e.Create() : null;
        }

        /// <summary>A new, empty message of a registered id, or null.</summary>
        public IMessage Create(ushort id)
        {
            Entry e;
            return byId.TryGetValue(id, out e) ? e.Create() : null;
        }
    }
}
