// Protobuf's wire format for the generated code: varints, zigzag, fixed 32/64, and
// length-delimited fields (nested messages, strings, bytes, packed repeated numbers).
using System;
using System.IO;
using System.Text;

namespace Longlink
{
    /// <summary>Writes protobuf fields into a growing buffer.</summary>
    public sealed class ProtoWriter
    {
        byte[] buf = new byte[64];
        int len;

        /// <summary>The bytes written.</summary>
        public byte[] ToArray() { var b = new byte[len]; Buffer.BlockCopy(buf, 0, b, 0, len); return b; }
        /// <summary>How many bytes are written.</summary>
        public int Length { get { return len; } }

        void Grow(int n)
        {
            if (len + n <= buf.Length) return;
            var b = new byte[Math.Max(buf.Length * 2, len + n)];
            Buffer.BlockCopy(buf, 0, b, 0, len);
            buf = b;
        }

        /// <summary>A field's key: its number and wire type.</summary>
        public void Tag(int number, int wire) { Varint(((ulong)number << 3) | (uint)wire); }
        /// <summary>A varint.</summary>
        public void Varint(ulong v)
        {
            Grow(10);
            while (v >= 0x80) { buf[len++] = (byte)(v | 0x80); v >>= 7; }
            buf[len++] = (byte)v;
        }
        /// <summary>Raw bytes.</summary>
        public void Raw(byte[] b) { Grow(b.Length); Buffer.BlockCopy(b, 0, buf, len, b.Length); len += b.Length; }
        /// <summary>A length-delimited value.</summary>
        public void LengthDelimited(byte[] b) { Varint((ulong)b.Length); Raw(b); }
        /// <summary>int32 (negative: ten bytes, as protobuf says).</summary>
        public void Int32(int v) { Varint((ulong)(long)v); }
        /// <summary>int64.</summary>
        public void Int64(long v) { Varint((ulong)v); }
        /// <summary>uint32.</summary>
        public void UInt32(uint v) { Varint(v); }
        /// <summary>uint64.</summary>
        public void UInt64(ulong v) { Varint(v); }
        /// <summary>sint32 (zigzag).</summary>
        public void SInt32(int v) { Varint((uint)((v << 1) ^ (v >> 31))); }
        /// <summary>sint64 (zigzag).</summary>
        public void SInt64(long v) { Varint((ulong)((v << 1) ^ (v >> 63))); }
        /// <summary>bool.</summary>
        public void Bool(bool v) { Varint(v ? 1UL : 0UL); }
        /// <summary>An enum's number.</summary>
        public void Enum(int v) { Int32(v); }
        /// <summary>fixed32.</summary>
        public void Fixed32(uint v) { Grow(4); for (int i = 0; i < 4; i++) buf[len++] = (byte)(v >> (8 * i)); }
        /// <summary>fixed64.</summary>
        public void Fixed64(ulong v) { Grow(8); for (int i = 0; i < 8; i++) buf[len++] = (byte)(v >> (8 * i)); }
        /// <summary>sfixed32.</summary>
        public void SFixed32(int v) { Fixed32((uint)v); }
        /// <summary>sfixed64.</summary>
        public void SFixed64(long v) { Fixed64((ulong)v); }
        /// <summary>float.</summary>
        public void Float(float v) { Fixed32(BitConverter.ToUInt32(BitConverter.GetBytes(v), 0)); }
        /// <summary>double.</summary>
        public void Double(double v) { Fixed64((ulong)BitConverter.DoubleToInt64Bits(v)); }
        /// <summary>string (UTF-8, length-delimited).</summary>
        public void String(string v) { LengthDelimited(Encoding.UTF8.GetBytes(v ?? "")); }
        /// <summary>bytes (length-delimited).</summary>
        public void Bytes(byte[] v) { LengthDelimited(v ?? new byte[0]); }
        /// <summary>A nested message (length-delimited).</summary>
        public void Message(IMessage m) { LengthDelimited(Body(m)); }
        /// <summary>A message's protobuf body.</summary>
        public static byte[] Body(IMessage m) { var w = new ProtoWriter(); m.WriteProto(w); return w.ToArray(); }
    }

    /// <summary>Reads protobuf fields from a byte range.</summary>
    public sealed class ProtoReader
    {
        readonly byte[] buf;
        int pos;
        readonly int end;

        /// <summary>A reader of all of <paramref name="b"/>.</summary>
        public ProtoReader(byte[] b) : this(b, 0, b.Length) { }
        /// <summary>A reader of <paramref name="count"/> bytes from <paramref name="offset"/>.</summary>
        public ProtoReader(byte[] b, int offset, int count) { buf = b; pos = offset; end = offset + count; }

        /// <summary>Whether every byte is read.</summary>
        public bool Done { get { return pos >= end; } }

        /// <summary>The next field's key: its number, and its wire type in <paramref name="wire"/>.</summary>
        public int Tag(out int wire)
        {
            ulong k = Varint();
            wire = (int)(k & 7);
            if ((k >> 3) == 0 || (k >> 3) > int.MaxValue) throw new InvalidDataException("protobuf: bad field number");
            return (int)(k >> 3);
        }

        /// <summary>A varint.</summary>
        public ulong Varint()
        {
            ulong v = 0;
            for (int shift = 0; shift < 70; shift += 7)
            {
                if (pos >= end) throw new InvalidDataException("protobuf: truncated varint");
                byte b = buf[pos++];
                v |= (ulong)(b & 0x7f) << shift;
                if (b < 0x80) return v;
            }
            throw new InvalidDataException("protobuf: varint too long");
        }

        /// <summary>A length-delimited field's reader (a nested message, a packed run).</summary>
        public ProtoReader Sub()
        {
            int n = Length();
            var r = new ProtoReader(buf, pos, n);
            pos += n;
            return r;
        }

        int Length()
        {
            ulong n = Varint();
            if (n > (ulong)(end - pos)) throw new InvalidDataException("protobuf: length past the end");
            return (int)n;
        }

        /// <summary>Skips a field of wire type <paramref name="wire"/>.</summary>
        public void Skip(int wire)
        {
            switch (wire)
            {
                case 0: Varint(); break;
                case 1: Need(8); pos += 8; break;
                case 2: pos += Length(); break;
                case 5: Need(4); pos += 4; break;
                default: throw new InvalidDataException("protobuf: wire type " + wire);
            }
        }

        void Need(int n) { if (end - pos < n) throw new InvalidDataException("protobuf: truncated"); }

        /// <summary>int32.</summary>
        public int Int32() { return unchecked((int)Varint()); }
        /// <summary>int64.</summary>
        public long Int64() { return unchecked((long)Varint()); }
        /// <summary>uint32.</summary>
        public uint UInt32() { return unchecked((uint)Varint()); }
        /// <summary>uint64.</summary>
        public ulong UInt64() { return Varint(); }
        /// <summary>sint32.</summary>
        public int SInt32() { uint v = (uint)Varint(); return (int)(v >> 1) ^ -(int)(v & 1); }
        /// <summary>sint64.</summary>
        public long SInt64() { ulong v = Varint(); return (long)(v >> 1) ^ -(long)(v & 1); }
        /// <summary>bool.</summary>
        public bool Bool() { return Varint() != 0; }
        /// <summary>An enum's number.</summary>
        public int Enum() { return Int32(); }
        /// <summary>fixed32.</summary>
        public uint Fixed32() { Need(4); uint v = 0; for (int i = 0; i < 4; i++) v |= (uint)buf[pos++] << (8 * i); return v; }
        /// <summary>fixed64.</summary>
        public ulong Fixed64() { Need(8); ulong v = 0; for (int i = 0; i < 8; i++) v |= (ulong)buf[pos++] << (8 * i); return v; }
        /// <summary>sfixed32.</summary>
        public int SFixed32() { return (int)Fixed32(); }
        /// <summary>sfixed64.</summary>
        public long SFixed64() { return (long)Fixed64(); }
        /// <summary>float.</summary>
        public float Float() { return BitConverter.ToSingle(BitConverter.GetBytes(Fixed32()), 0); }
        /// <summary>double.</summary>
        public double Double() { return BitConverter.Int64BitsToDouble((long)Fixed64()); }
        /// <summary>string.</summary>
        public string String() { int n = Length(); var s = Encoding.UTF8.GetString(buf, pos, n); pos += n; return s; }
        /// <summary>A nested message into <paramref name="m"/>, which it returns.</summary>
        public T Message<T>(T m) where T : IMessage { m.ReadProto(Sub()); return m; }
        /// <summary>bytes.</summary>
        public byte[] Bytes() { int n = Length(); var b = new byte[n]; Buffer.BlockCopy(buf, pos, b, 0, n); pos += n; return b; }
    }
}
