// server.js -- start a real `sprig serve` for the client's tests.
//
// The storage is made with the CLI (schema, database, an administrator
// with a password and a token, all before the server starts); the server
// enforces authentication, listens on an ephemeral port of 127.0.0.1 and
// is stopped (SIGTERM, then SIGKILL) when the test ends.  The binary is
// $SPRIG_BIN (ctest passes it), else ../../build/tools/sprig.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const SPRIG = process.env.SPRIG_BIN ||
  join(here, "..", "..", "..", "build", "tools", "sprig");
export const ADMIN_PW = "js-admin-pw";

function run(path, args) {
  return execFileSync(SPRIG, ["--path", path, ...args], {
    env: { ...process.env, SPRIG_JS_PW: ADMIN_PW }, timeout: 30000,
    stdio: ["ignore", "pipe", "pipe"] }).toString();
}

/** A storage with schema "chat" (messages: u64, people: natural), database
 *  "default", user admin (password ADMIN_PW, group admins granted `*` on
 *  `sprig`) and a token file for it. */
export function makeStorage() {
  if (!existsSync(SPRIG)) throw new Error(`no sprig binary at ${SPRIG}`);
  const dir = mkdtempSync(join(tmpdir(), "sprig-js-"));
  const path = join(dir, "storage");
  run(path, ["schema", "define", "chat", "messages", "people:natural"]);
  run(path, ["db", "create", "default", "--schema", "chat"]);
  for (const cmd of [
    ["user", "create", "admin", "--password-env", "SPRIG_JS_PW",
     "--hash-cost", "min"],
    ["group", "create", "admins"],
    ["group", "grant", "admins", "*", "sprig"],
    ["user", "add-group", "admin", "admins"],
    ["user", "create", "reader", "--password-env", "SPRIG_JS_PW",
     "--hash-cost", "min"],
    ["token", "create", "admin", "--out", join(dir, "admin.token")]])
    run(path, ["admin", ...cmd]);
  const token = readFileSync(join(dir, "admin.token"), "utf8").trim();
  return { dir, path, token };
}

/** Start `sprig serve` on `path`; resolves {url, port, stop()}. */
export function startServer(path, port = 0) {
  const proc = spawn(SPRIG, ["--path", path, "serve", "--ws",
                             `127.0.0.1:${port}`, "--quic", "off"],
                     { stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  proc.stderr.on("data", (d) => { err += d; });
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`the server did not start: ${out} ${err}`));
    }, 20000);
    proc.stdout.on("data", (d) => {
      out += d;
      const m = /listening on ws:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      proc.stdout.removeAllListeners("data");
      proc.stdout.resume();
      const p = Number(m[1]);
      resolve({
        url: `ws://127.0.0.1:${p}`, port: p, proc,
        stop: () => new Promise((res) => {
          if (proc.exitCode !== null) return res(proc.exitCode);
          const kill = setTimeout(() => proc.kill("SIGKILL"), 10000);
          proc.once("exit", (code) => { clearTimeout(kill); res(code); });
          proc.kill("SIGTERM");
        }),
      });
    });
    proc.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code}): ${err}`));
    });
  });
}

export function removeStorage(dir) {
  rmSync(dir, { recursive: true, force: true });
}
