// JSON for the generated code: a writer that appends to a StringBuilder and a reader that
// parses into a small tree (JsonObject, List<object>, string, JsonNumber, bool, null).
// Numbers keep their text, so 64-bit integers are exact.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace Longlink
{
    /// <summary>A JSON number as written: read it as the type the field has.</summary>
    public sealed class JsonNumber
    {
        /// <summary>The number's text.</summary>
        public readonly string Text;
        /// <summary>A number from its text.</summary>
        public JsonNumber(string text) { Text = text; }
        /// <summary>The text.</summary>
        public override string ToString() { return Text; }
    }

    /// <summary>A JSON object: keys in order of appearance.</summary>
    public sealed class JsonObject : Dictionary<string, object>
    {
    }

    /// <summary>Reads JSON text into a tree; reads typed values out of one.</summary>
    public static class Json
    {
        /// <summary>Parses one JSON value; throws FormatException on bad input.</summary>
        public static object Parse(string text)
        {
            int i = 0;
            object v = Value(text, ref i);
            Ws(text, ref i);
            if (i != text.Length) throw new FormatException("json: trailing characters at " + i);
            return v;
        }

        static void Ws(string s, ref int i)
        {
            while (i < s.Length && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
        }

        static object Value(string s, ref int i)
        {
            Ws(s, ref i);
            if (i >= s.Length) throw new FormatException("json: unexpected end");
            char c = s[i];
            if (c == '{')
            {
                var o = new JsonObject();
                i++;
                Ws(s, ref i);
                if (i < s.Length && s[i] == '}') { i++; return o; }
                while (true)
                {
                    Ws(s, ref i);
                    if (i >= s.Length || s[i] != '"') throw new FormatException("json: key expected at " + i);
                    string k = Str(s, ref i);
                    Ws(s, ref i);
                    if (i >= s.Length || s[i] != ':') throw new FormatException("json: ':' expected at " + i);
                    i++;
                    o[k] = Value(s, ref i);
                    Ws(s, ref i);
                    if (i < s.Length && s[i] == ',') { i++; continue; }
                    if (i < s.Length && s[i] == '}') { i++; return o; }
                    throw new FormatException("json: ',' or '}' expected at " + i);
                }
            }
            if (c == '[')
            {
                var a = new List<object>();
                i++;
                Ws(s, ref i);
                if (i < s.Length && s[i] == ']') { i++; return a; }
                while (true)
                {
                    a.Add(Value(s, ref i));
                    Ws(s, ref i);
                    if (i < s.Length && s[i] == ',') { i++; continue; }
                    if (i < s.Length && s[i] == ']') { i++; return a; }
                    throw new FormatException("json: ',' or ']' expected at " + i);
                }
            }
            if (c == '"') return Str(s, ref i);
            if (Lit(s, ref i, "true")) return true;
            if (Lit(s, ref i, "false")) return false;
            if (Lit(s, ref i, "null")) return null;
            int start = i;
            while (i < s.Length && "+-0123456789.eE".IndexOf(s[i]) >= 0) i++;
            if (i == start) throw new FormatException("json: unexpected '" + c + "' at " + i);
            return new JsonNumber(s.Substring(start, i - start));
        }

        static bool Lit(string s, ref int i, string lit)
        {
            if (string.CompareOrdinal(s, i, lit, 0, lit.Length) != 0) return false;
            i += lit.Length;
            return true;
        }

        static string Str(string s, ref int i)
        {
            var sb = new StringBuilder();
            i++;
            while (true)
            {
                if (i >= s.Length) throw new FormatException("json: unterminated string");
                char c = s[i++];
                if (c == '"') return sb.ToString();
                if (c != '\\') { sb.Append(c); continue; }
                if (i >= s.Length) throw new FormatException("json: unterminated string");
                char e = s[i++];
                switch (e)
                {
                    case 'n': sb.Append('\n'); break;
                    case 't': sb.Append('\t'); break;
                    case 'r': sb.Append('\r'); break;
                    case 'b': sb.Append('\b'); break;
                    case 'f': sb.Append('\f'); break;
                    case 'u':
                        if (i + 4 > s.Length) throw new FormatException("json: bad \\u escape");
                        sb.Append((char)int.Parse(s.Substring(i, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                        i += 4;
                        break;
                    default: sb.Append(e); break;
                }
            }
        }

        // Typed reads, for the generated code: null (absent) gives the default.

        /// <summary>The object, or null.</summary>
        public static JsonObject Obj(object v) { return v as JsonObject; }
        /// <summary>The array, or an empty one.</summary>
        public static List<object> Arr(object v) { return v as List<object> ?? new List<object>(); }
        /// <summary>A field of an object, or null.</summary>
        public static object Get(JsonObject o, string key) { object v; return o != null && o.TryGetValue(key, out v) ? v : null; }

        static string Num(object v)
        {
            var n = v as JsonNumber;
            if (n != null) return n.Text;
            var s = v as string;
            return s;
        }

        /// <summary>A signed integer.</summary>
        public static long Long(object v)
        {
            string t = Num(v);
            if (t == null) return 0;
            long l;
            if (long.TryParse(t, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out l)) return l;
            return (long)double.Parse(t, CultureInfo.InvariantCulture);
        }
        /// <summary>An unsigned integer.</summary>
        public static ulong ULong(object v)
        {
            string t = Num(v);
            if (t == null) return 0;
            ulong l;
            if (ulong.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out l)) return l;
            return (ulong)double.Parse(t, CultureInfo.InvariantCulture);
        }
        /// <summary>A 32-bit signed integer.</summary>
        public static int Int(object v) { return unchecked((int)Long(v)); }
        /// <summary>A 32-bit unsigned integer.</summary>
        public static uint UInt(object v) { return unchecked((uint)ULong(v)); }
        /// <summary>A double.</summary>
        public static double Double(object v)
        {
            string t = Num(v);
            if (t == null) return 0;
            if (t == "NaN") return double.NaN;
            if (t == "Infinity") return double.PositiveInfinity;
            if (t == "-Infinity") return double.NegativeInfinity;
            return double.Parse(t, NumberStyles.Float, CultureInfo.InvariantCulture);
        }
        /// <summary>A float.</summary>
        public static float Float(object v) { return (float)Double(v); }
        /// <summary>A nested message, read into <paramref name="m"/>, which it returns.</summary>
        public static T Message<T>(T m, object v) where T : IMessage { m.ReadJson(Obj(v)); return m; }
        /// <summary>A bool.</summary>
        public static bool Bool(object v) { return v is bool && (bool)v; }
        /// <summary>A string ("" for null).</summary>
        public static string String(object v) { return v as string ?? (v is JsonNumber ? ((JsonNumber)v).Text : ""); }
        /// <summary>Bytes: an array of numbers (serde's form) or base64 text.</summary>
        public static byte[] Bytes(object v)
        {
            var s = v as string;
            if (s != null) return Convert.FromBase64String(s);
            var a = v as List<object>;
            if (a == null) return new byte[0];
            var b = new byte[a.Count];
            for (int i = 0; i < a.Count; i++) b[i] = (byte)Long(a[i]);
            return b;
        }
    }

    /// <summary>Writes JSON text, for the generated code.</summary>
    public sealed class JsonWriter
    {
        readonly StringBuilder sb = new StringBuilder();
        bool comma;

        /// <summary>The text written.</summary>
        public override string ToString() { return sb.ToString(); }

        void Sep() { if (comma) sb.Append(','); comma = true; }

        /// <summary>'{'.</summary>
        public void BeginObject() { Sep(); sb.Append('{'); comma = false; }
        /// <summary>'}'.</summary>
        public void EndObject() { sb.Append('}'); comma = true; }
        /// <summary>'['.</summary>
        public void BeginArray() { Sep(); sb.Append('['); comma = false; }
        /// <summary>']'.</summary>
        public void EndArray() { sb.Append(']'); comma = true; }
        /// <summary>A key of the object being written.</summary>
        public void Key(string k) { Sep(); Quote(k); sb.Append(':'); comma = false; }
        /// <summary>null.</summary>
        public void Null() { Sep(); sb.Append("null"); }
        /// <summary>A string.</summary>
        public void Value(string v) { Sep(); Quote(v ?? ""); }
        /// <summary>A bool.</summary>
        public void Value(bool v) { Sep(); sb.Append(v ? "true" : "false"); }
        /// <summary>An integer.</summary>
        public void Value(long v) { Sep(); sb.Append(v.ToString(CultureInfo.InvariantCulture)); }
        /// <summary>An unsigned integer.</summary>
        public void Value(ulong v) { Sep(); sb.Append(v.ToString(CultureInfo.InvariantCulture)); }
        /// <summary>A double.</summary>
        public void Value(double v)
        {
            Sep();
            if (double.IsNaN(v) || double.IsInfinity(v)) { sb.Append("null"); return; }
            string t = v.ToString("R", CultureInfo.InvariantCulture);
            if (t.IndexOf('.') < 0 && t.IndexOf('E') < 0) t += ".0";
            sb.Append(t);
        }
        /// <summary>A float (written as its shortest double).</summary>
        public void Value(float v) { Value(double.Parse(v.ToString("R", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture)); }
        /// <summary>Bytes, as an array of numbers (serde's form, what the server reads).</summary>
        public void Value(byte[] v)
        {
            BeginArray();
            if (v != null) foreach (byte b in v) Value((long)b);
            EndArray();
        }

        void Quote(string s)
        {
            sb.Append('"');
            foreach (char c in s)
            {
                switch (c)
                {
                    case '"': sb.Append("\\\""); break;
                    case '\\': sb.Append("\\\\"); break;
                    case '\n': sb.Append("\\n"); break;
                    case '\r': sb.Append("\\r"); break;
                    case '\t': sb.Append("\\t"); break;
                    default:
                        if (c < 0x20) sb.Append("\\u").Append(((int)c).ToString("x4"));
                        else sb.Append(c);
                        break;
                }
            }
            sb.Append('"');
        }
    }
}
