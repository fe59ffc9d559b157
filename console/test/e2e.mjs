// e2e.mjs -- the web console end to end, in headless Chromium (Debian's
// /usr/bin/chromium driven by playwright-core): a real `sprig serve` with
// authentication, a user who logs in through the page, creates and edits
// a document, hits a revision conflict (a second writer -- the JavaScript
// client in Node -- changes the document meanwhile) and resolves it,
// queries a view a page at a time and reduces it, sees a PubSub message
// and a committed change arrive live, browses a key-value namespace and
// deletes a key and a document.  Screenshots of each step
// are kept in OUT (a build directory).
//
//   node e2e.mjs SPRIG_BINARY OUT_DIR [JS_CLIENT_DIR]
//
// Exit 0: every step passed; 77: Chromium is missing (ctest: skipped);
// else the failing step is printed.  Bounded: every wait has a timeout.

import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { existsSync } from "node:fs";

const here = dirname(fileURLToPath(import.meta.url));
const [sprig, outDir, jsDirArg] = process.argv.slice(2);
const jsDir = resolve(jsDirArg || join(here, "..", "..", "clients", "js"));
const CHROMIUM = process.env.SPRIG_CHROMIUM || "/usr/bin/chromium";
if (!sprig || !outDir) {
  console.error("usage: node e2e.mjs SPRIG_BINARY OUT_DIR [JS_CLIENT_DIR]");
  process.exit(2);
}
if (!existsSync(CHROMIUM)) {
  console.log(`skipped: no ${CHROMIUM} (apt-get install chromium)`);
  process.exit(77);
}
const { chromium } = await import("playwright-core");
const { connect, u64 } = await import(pathToFileURL(join(jsDir, "index.js")));

const started = Date.now();
const PW = "console-e2e-pw";
const dir = mkdtempSync(join(process.env.SPRIG_TEST_TMP || tmpdir(), "console-e2e-"));
mkdirSync(outDir, { recursive: true });
let server = null, browser = null, node = null, shot = 0, passed = 0;

function step(name) {
  console.log(`-- ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  passed++;
}

async function snap(page, name) {
  const file = join(outDir, `${String(++shot).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
}

function cli(...args) {
  return execFileSync(sprig, ["--path", dir, ...args], {
    env: { ...process.env, E2E_PW: PW }, stdio: ["ignore", "pipe", "pipe"],
  }).toString();
}

/** Start `sprig serve` on a free port; resolves the console's URL. */
function serve() {
  return new Promise((res, rej) => {
    server = spawn(sprig, ["--path", dir, "--schema", join(here, "schema.json"),
                           "serve", "--ws", "127.0.0.1:0", "--quic", "off"],
                   { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    const timer = setTimeout(() => rej(new Error(`no console address in: ${out}`)), 15000);
    server.stdout.on("data", (d) => {
      out += d;
      const m = /web console: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m) { clearTimeout(timer); res(m[1]); }
    });
    server.on("exit", (code) => rej(new Error(`sprig serve exited ${code}: ${out}`)));
  });
}

async function main() {
  cli("admin", "user", "create", "alice", "--password-env", "E2E_PW", "--hash-cost", "min");
  cli("admin", "group", "create", "admins");
  cli("admin", "group", "grant", "admins", "*", "sprig");
  cli("admin", "user", "add-group", "alice", "admins");
  const url = await serve();
  const wsUrl = url.replace(/^http/, "ws");
  step(`server at ${url}`);

  // the second writer and publisher: the JavaScript client in Node
  node = await connect(wsUrl, { user: "alice", password: PW, reconnect: false });
  const db = node.db("default");

  browser = await chromium.launch({ executablePath: CHROMIUM,
                                    args: ["--no-sandbox", "--disable-gpu"] });
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  page.setDefaultTimeout(20000); // generous: the machine may be loaded
  const errors = [];
  page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error") errors.push(`console: ${m.text()}`); });

  // log in
  await page.goto(url);
  await page.getByLabel("User").waitFor();
  if (await page.getByRole("button", { name: "Log out" }).isVisible())
    throw new Error("a Log out button shows before anyone logged in");
  await page.getByLabel("User").fill("alice");
  await page.getByLabel("Password").fill("wrong");
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByText(/Cannot log in/).waitFor();
  await snap(page, "login-refused");
  await page.getByLabel("Password").fill(PW);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.locator("#conn.ok").waitFor();
  await page.getByText("as alice").waitFor();
  await page.getByRole("button", { name: "Log out" }).waitFor();
  await snap(page, "logged-in");
  step("logged in (a wrong password refused first)");

  // databases and collections; a new document
  await page.getByRole("link", { name: "default" }).click();
  await page.getByRole("link", { name: "notes" }).click();
  await page.getByRole("link", { name: "New document" }).click();
  await page.getByLabel("Contents (JSON)").fill('{"title": "first", "tag": "a"}');
  await page.getByRole("button", { name: "Create" }).click();
  await page.getByRole("heading", { name: /^Document \d+$/ }).waitFor();
  const docId = BigInt((await page.getByRole("heading", { name: /^Document \d+$/ }).textContent()).split(" ")[1]);
  await expectText(page.locator("dd.revision"), "1");
  await snap(page, "created");
  step(`created document ${docId}`);

  // edit it
  await page.getByRole("link", { name: "Edit" }).click();
  await page.getByLabel("Contents (JSON)").fill('{"title": "second", "tag": "a"}');
  await page.getByRole("button", { name: "Save" }).click();
  await expectText(page.locator("dd.revision"), "2");
  await page.getByText('"second"').waitFor();
  step("edited: revision 2");

  // a conflict: Node changes it while the page edits revision 2
  await page.getByRole("link", { name: "Edit" }).click();
  const cur = await db.get("notes", docId);
  await db.update("notes", cur.header, new TextEncoder().encode('{"title": "theirs", "tag": "a"}'));
  await page.getByLabel("Contents (JSON)").fill('{"title": "mine", "tag": "a"}');
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByRole("heading", { name: /Conflict/ }).waitFor();
  await page.getByRole("heading", { name: "Theirs (revision 3)" }).waitFor();
  await page.locator("pre.theirs").getByText('"theirs"').waitFor();
  await snap(page, "conflict");
  await page.getByRole("button", { name: "Save mine over theirs" }).click();
  await expectText(page.locator("dd.revision"), "4");
  const stored = await db.get("notes", docId);
  if (stored.revision !== 4 || stored.json().title !== "mine")
    throw new Error(`after the retry the server holds ${stored.text()} at revision ${stored.revision}`);
  await snap(page, "conflict-resolved");
  step("conflict shown (theirs at revision 3) and resolved: mine at revision 4");

  // a view, a page at a time, and its reduce
  for (let i = 0; i < 4; i++)
    await db.insert("notes", new TextEncoder().encode(JSON.stringify({ title: `n${i}`, tag: i < 3 ? "a" : "b" })));
  await page.getByRole("link", { name: "Views" }).click();
  await page.locator("#q-match").selectOption("key");
  await page.locator("#q-key").fill('"a"');
  await page.getByLabel("Page size").fill("3");
  await page.getByRole("button", { name: "Query" }).click();
  await page.getByText("by-tag: 3 mappings on page 1").waitFor();
  await snap(page, "view-page-1");
  await page.getByRole("button", { name: "Next page" }).click();
  await page.getByText("by-tag: 1 mapping on page 2").waitFor();
  await page.getByRole("button", { name: "Reduce", exact: true }).click();
  await expectText(page.locator("output#reduced"), "4");
  await snap(page, "view-reduce");
  await page.locator("#q-match").selectOption("all");
  await page.getByRole("button", { name: "Reduce by key" }).click();
  await page.getByRole("cell", { name: '"b"' }).waitFor();
  step("view queried in pages (3 + 1 mappings of key \"a\"), reduced to 4, grouped");

  // PubSub: a message from Node arrives live
  await page.getByRole("link", { name: "PubSub" }).click();
  await page.getByLabel("Topic").first().fill("news");
  await page.getByRole("button", { name: "Watch" }).click();
  await page.getByText("Watching: news").waitFor();
  await db.publish("news", "hello from node");
  await page.locator("ol.log").getByText("hello from node").waitFor();
  await snap(page, "pubsub");
  step("PubSub message arrived live");

  // Changes: a document Node inserts arrives live
  await page.getByRole("link", { name: "Changes" }).click();
  await page.getByRole("button", { name: "Follow" }).click();
  await page.getByText(/Following changes after transaction/).waitFor();
  const h = await db.insert("notes", new TextEncoder().encode('{"title": "live", "tag": "c"}'));
  const newId = (await import(pathToFileURL(join(jsDir, "index.js")))).idToBigInt(h.id);
  await page.locator("ol.log").getByRole("link", { name: String(newId) }).waitFor();
  await snap(page, "changes");
  step(`change of document ${newId} arrived live`);

  // key-value: a key Node sets is listed, then deleted from the page
  await db.kv("").set("greeting", "hello from the kv store");
  await page.getByRole("link", { name: "Key-value" }).click();
  await page.getByRole("cell", { name: "hello from the kv store" }).waitFor();
  await snap(page, "kv");
  await page.getByRole("button", { name: "Delete key greeting" }).click();
  await page.getByText("No keys.").waitFor();
  if ((await db.kv("").get("greeting")) !== null)
    throw new Error("the key is still there after the page deleted it");
  step("key-value namespace browsed, a key deleted");

  // delete a document from its page
  await page.goto(`${url}#/db/default/docs/notes/${newId}`);
  await page.getByRole("button", { name: "Delete", exact: true }).click();
  await page.getByRole("button", { name: "Yes, delete" }).click();
  await page.getByText(/^notes: 5 documents$/).waitFor();
  await db.get("notes", newId).then(
    () => { throw new Error(`document ${newId} is still there`); },
    (e) => { if (e.code !== -1) throw e; });
  step(`document ${newId} deleted`);

  // server health and connected clients: the page's own connection
  // (marked "you", as alice) and a second client opened now, as bob
  await node.call("admin.user_create", { name: "bob", password: PW });
  const second = await connect(wsUrl, { user: "bob", password: PW, reconnect: false });
  try {
    await second.db("default").count("notes").catch(() => {}); // a request
    const mine = (await node.connectedClients()).find((c) => c.identity === "bob");
    if (!mine || mine.yours) throw new Error("alice's client does not list bob's");
    await page.getByRole("link", { name: "Server health" }).click();
    await page.locator("#connections").waitFor();
    const rows = page.locator("table.clients tbody tr");
    const you = page.locator("table.clients tr.yours");
    await you.waitFor();
    if ((await you.count()) !== 1) throw new Error("not exactly one row marked as the console's");
    await expectText(you.locator("td.identity"), "alice");
    await expectText(you.locator("td.you"), "you");
    const bobRow = page.locator(`table.clients tr[data-id="${mine.id}"]`);
    await bobRow.waitFor(); // within a refresh
    await expectText(bobRow.locator("td.identity"), "bob");
    await expectText(bobRow.locator("td.you"), "");
    if ((await rows.count()) < 3) // the page, node (alice) and bob
      throw new Error(`only ${await rows.count()} clients listed`);
    await snap(page, "server");
    second.close();
    await page.locator(`table.clients tr[data-id="${mine.id}"]`)
      .waitFor({ state: "detached" }); // gone within a refresh
  } finally {
    second.close();
  }
  step("server health and connected clients shown (this page, a second client)");

  await page.getByRole("button", { name: "Log out" }).click();
  await page.getByText("Logged out.").waitFor();
  await page.getByRole("button", { name: "Log in" }).waitFor();
  step("logged out");

  if (errors.length) throw new Error(errors.join("\n"));
}

async function expectText(locator, want) {
  const until = Date.now() + 20000;
  let got;
  while (Date.now() < until) {
    got = (await locator.textContent()).trim();
    if (got === want) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`wanted '${want}', the page shows '${got}'`);
}

let failed = 0;
try {
  await main();
} catch (e) {
  failed = 1;
  console.error(`FAILED: ${e.stack || e}`);
  if (browser) {
    const pages = browser.contexts().flatMap((c) => c.pages());
    if (pages[0]) await snap(pages[0], "failure").catch(() => {});
  }
} finally {
  if (node) node.close();
  if (browser) await browser.close();
  if (server) server.kill("SIGTERM");
  rmSync(dir, { recursive: true, force: true });
}
console.log(`screenshots: ${outDir}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed);
