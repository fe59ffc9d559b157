// keys.test.mjs -- the console's view-key encoding (console/keys.js)
// against a real server: keys typed as JSON find the mappings the server's
// declarative views emitted (strings with NUL, integers past 2^53,
// negatives, floats, booleans, null, tuples), and the keys it answers
// print back as the JSON they came from.
//   SPRIG_BIN=build/tools/sprig SPRIG_JS_DIR=clients/js node --test
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { keyFromJson, keyToJson } from "../keys.js";

const here = dirname(fileURLToPath(import.meta.url));
const SPRIG = process.env.SPRIG_BIN || join(here, "..", "..", "build", "tools", "sprig");
const JS = process.env.SPRIG_JS_DIR || join(here, "..", "..", "clients", "js");
const { connect } = await import(pathToFileURL(join(JS, "index.js")));

function serve(dir) {
  const p = spawn(SPRIG, ["--path", dir, "serve", "--ws", "127.0.0.1:0", "--quic", "off",
                          "--insecure-open"], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((res, rej) => {
    let out = "";
    const t = setTimeout(() => rej(new Error(`no address: ${out}`)), 20000);
    p.stdout.on("data", (d) => {
      out += d;
      const m = /listening on (ws:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) { clearTimeout(t); res({ url: m[1], p }); }
    });
  });
}

const keys = ["42", "1152921504606846977", "-9007199254740993", "-5", "2.5",
              "\"s\\u0000x\"", "\"\"", "true", "false", "null"];

test("keys typed as JSON find what the server's views emit", async () => {
  const dir = mkdtempSync(join(process.env.SPRIG_TEST_TMP || tmpdir(), "console-keys-"));
  const { url, p } = await serve(dir);
  const c = await connect(url, { reconnect: false });
  try {
    await c.registerSchema({ name: "k", collections: [{ name: "c", idKind: "u64", views: [
      { name: "v", policy: "eager", jsonKey: "n", reduce: "count" },
      { name: "t", policy: "eager", jsonKey: "a,b", reduce: "count" }] }] });
    await c.createDatabase("kdb", "k");
    const db = c.db("kdb");
    const te = new TextEncoder();
    for (const n of keys) await db.insert("c", te.encode(`{"n": ${n}, "a": ${n}, "b": "x"}`));
    for (const n of keys) {
      const m = await db.query("c", "v", { key: keyFromJson(n) });
      assert.equal(m.length, 1, `key ${n}`);
      assert.equal(keyToJson(m[0].key), JSON.stringify(JSON.parse(n)) === n ? n : keyToJson(keyFromJson(n)));
      const t = await db.query("c", "t", { key: keyFromJson(`[${n}, "x"]`) });
      assert.equal(t.length, 1, `tuple key [${n}, "x"]`);
      assert.equal(keyToJson(t[0].key), `[${keyToJson(keyFromJson(n))}, "x"]`);
    }
    assert.equal(keyToJson(keyFromJson("1152921504606846977")), "1152921504606846977");
    assert.equal(keyToJson(keyFromJson("\"s\\u0000x\"")), "\"s\\u0000x\"");
    assert.equal(keyToJson(new Uint8Array([0x99])), null); // not a tuple key
    assert.throws(() => keyFromJson("{\"a\": 1}"));
    assert.throws(() => keyFromJson("[]"));
  } finally {
    c.close();
    p.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  }
});
