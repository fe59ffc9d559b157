// keys.js -- view keys as people write them: the tagged tuple encoding of
// declarative views (include/sprig/sprig.h, "Tuple keys"), from and to
// JSON text.  A scalar is a 1-tuple; an array of scalars a tuple.  A JSON
// number is a float element when its double is exact, else a 64-bit
// integer element (as src/core/json_view.c does), so keys typed here find
// what the server's views emitted.

const T = { NULL: 0x01, FALSE: 0x02, TRUE: 0x03, NEGINT: 0x10, POSINT: 0x11,
            FLOAT: 0x20, STRING: 0x30, BYTES: 0x31 };
const TOP = 1n << 63n, MASK = (1n << 64n) - 1n;
const te = new TextEncoder(), td = new TextDecoder();

function u64be(v) {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v & MASK);
  return b;
}

function floatBits(d) {
  const dv = new DataView(new ArrayBuffer(8));
  dv.setFloat64(0, d === 0 ? 0 : d);
  const bits = dv.getBigUint64(0);
  return bits & TOP ? ~bits & MASK : bits | TOP;
}

function unfloat(bits) {
  const b = bits & TOP ? bits & ~TOP : ~bits & MASK;
  const dv = new DataView(new ArrayBuffer(8));
  dv.setBigUint64(0, b);
  return dv.getFloat64(0);
}

function element(v, source) {
  if (v === null) return [T.NULL];
  if (v === false) return [T.FALSE];
  if (v === true) return [T.TRUE];
  if (typeof v === "string") {
    const out = [T.STRING];
    for (const c of te.encode(v)) out.push(...(c === 0 ? [0, 0xff] : [c]));
    out.push(0);
    return out;
  }
  if (typeof v === "number") {
    if (source && /^-?\d+$/.test(source)) {
      const n = BigInt(source);
      const lim = 1n << 53n;
      const exact = (n >= -lim && n <= lim) || BigInt(Number(n)) === n;
      if (!exact)
        return [n < 0n ? T.NEGINT : T.POSINT, ...u64be(n)];
    }
    return [T.FLOAT, ...u64be(floatBits(v))];
  }
  throw new Error("a view key is a JSON scalar or an array of scalars");
}

/** The number literals of JSON text, in order (strings skipped). */
function numberLiterals(text) {
  const out = [];
  const re = /"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g;
  for (const m of text.matchAll(re)) if (m[0][0] !== '"') out.push(m[0]);
  return out;
}

/** The key bytes of JSON text `text` ("\"ann\"", "[\"a\", 1]", "42"). */
export function keyFromJson(text) {
  const v = JSON.parse(text);
  const sources = numberLiterals(text);
  const items = Array.isArray(v) ? v : [v];
  if (Array.isArray(v) && v.length === 0)
    throw new Error("an empty array is no key");
  const out = [];
  let n = 0;
  for (const x of items) {
    out.push(...element(x, typeof x === "number" ? sources[n++] : null));
  }
  return new Uint8Array(out);
}

/** The JSON text of tuple key `b`, or null when it is not a tuple key. */
export function keyToJson(b) {
  const parts = [];
  let i = 0;
  const num8 = () => {
    if (i + 8 > b.length) throw new Error("short");
    const v = new DataView(b.buffer, b.byteOffset + i, 8).getBigUint64(0);
    i += 8;
    return v;
  };
  try {
    while (i < b.length) {
      const tag = b[i++];
      if (tag === T.NULL) parts.push("null");
      else if (tag === T.FALSE) parts.push("false");
      else if (tag === T.TRUE) parts.push("true");
      else if (tag === T.POSINT) parts.push(num8().toString());
      else if (tag === T.NEGINT) parts.push(BigInt.asIntN(64, num8()).toString());
      else if (tag === T.FLOAT) parts.push(JSON.stringify(unfloat(num8())));
      else if (tag === T.STRING || tag === T.BYTES) {
        const bytes = [];
        for (;;) {
          if (i >= b.length) throw new Error("unterminated");
          const c = b[i++];
          if (c !== 0) bytes.push(c);
          else if (b[i] === 0xff) { bytes.push(0); i++; }
          else break;
        }
        const u = new Uint8Array(bytes);
        parts.push(tag === T.STRING
          ? JSON.stringify(td.decode(u))
          : JSON.stringify("0x" + Array.from(u, (x) =>
            x.toString(16).padStart(2, "0")).join("")));
      } else return null;
    }
  } catch (_) {
    return null;
  }
  if (parts.length === 0) return null;
  return parts.length === 1 ? parts[0] : `[${parts.join(", ")}]`;
}
