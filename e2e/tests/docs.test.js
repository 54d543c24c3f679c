// /docs: the interactive API reference from the vendored Swagger UI, under
// the Content-Security-Policy, with no request to another origin; and the
// vendored files, as a browser receives them, are the upstream files
// recorded in server/assets/VENDORED.md.

import { test, before, beforeEach, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { Browser, axeViolations, screenshot, server } from "../lib/harness.js";

let browser;
before(async () => {
  browser = await Browser.launch();
});
beforeEach(() => browser?.reset());
after(async () => {
  await browser?.close();
});

/** Upstream SHA-256 per stored file name, from VENDORED.md's first table. */
function upstreamHashes() {
  const text = readFileSync(new URL("../../server/assets/VENDORED.md", import.meta.url), "utf8");
  const hashes = new Map();
  for (const line of text.split("\n")) {
    const cells = line.split("|").map((c) => c.trim().replaceAll("`", ""));
    // | stored | package | version | licence | upstream | sha upstream | sha stored |
    if (cells.length === 9 && /^[0-9a-f]{64}$/.test(cells[6])) {
      hashes.set(cells[1].replace(/^vendor\//, "").replace(/\.gz$/, ""), cells[6]);
    }
  }
  return hashes;
}

test("/docs renders the OpenAPI document with Swagger UI and tries an operation", async (t) => {
  const context = await browser.context();
  const page = await context.newPage();
  const loaded = new Map();
  page.on("response", async (response) => {
    const name = new URL(response.url()).pathname.split("/").pop();
    if (response.ok() && /\.(js|css)$/.test(name)) {
      loaded.set(name, { body: await response.body(), encoding: response.headers()["content-encoding"] });
    }
  });
  const response = await page.goto("/docs");
  assert.equal(response.status(), 200);
  const csp = response.headers()["content-security-policy"] ?? "";
  assert.match(csp, /default-src 'self'/);
  assert.doesNotMatch(csp, /script-src[^;]*'unsafe-inline'/);

  // Every operation of the document is listed; open /health and run it.
  const health = page.locator(".opblock").filter({ hasText: "/health" }).first();
  await health.waitFor();
  await health.locator(".opblock-summary").click();
  await health.getByRole("button", { name: "Try it out" }).click();
  await health.getByRole("button", { name: "Execute" }).click();
  const status = health.locator(".live-responses-table tr.response .response-col_status").first();
  await status.waitFor();
  assert.match(await status.innerText(), /^200/);
  await page.waitForLoadState("networkidle");
  // Swagger UI's own markup has serious axe-core findings (nested
  // interactive controls in each operation's summary, low-contrast version
  // badges) that its stylesheet and React components decide, not our
  // pages: they are reported here, not failed on.
  for (const theme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme: theme });
    for (const v of await axeViolations(page)) t.diagnostic(`/docs (${theme}), Swagger UI: ${v}`);
    await screenshot(page, "docs", theme);
  }

  // What the browser decoded is the upstream file, byte for byte.
  const hashes = upstreamHashes();
  assert.ok(hashes.size >= 3, "VENDORED.md lists the vendored files");
  for (const [stem, expected] of hashes) {
    if (stem.startsWith("htmx")) continue; // loaded by the dashboard's pages
    const [, base, ext] = /^(.*)\.(js|css)$/.exec(stem);
    const served = new RegExp(`^${base.replaceAll(".", "\\.")}\\.[0-9a-f]+\\.${ext}$`);
    const file = [...loaded.entries()].find(([name]) => served.test(name));
    assert.ok(file, `${stem} was loaded by /docs (loaded: ${[...loaded.keys()].join(", ")})`);
    assert.equal(file[1].encoding, "gzip", `${stem} is sent gzip-compressed`);
    assert.equal(createHash("sha256").update(file[1].body).digest("hex"), expected, `${stem} decodes to the upstream file`);
  }
  await context.close();
  browser.assertClean();
});

test("a vendored gzip file is refused to a client that does not accept gzip", async () => {
  const context = await browser.context();
  const page = await context.newPage();
  await page.goto("/docs");
  const css = await page.locator('link[rel="stylesheet"]').first().getAttribute("href");
  await context.close();
  const plain = await fetch(new URL(css, server.base), { headers: { "accept-encoding": "identity" } });
  assert.equal(plain.status, 406);
  const gzip = await fetch(new URL(css, server.base), { headers: { "accept-encoding": "gzip, deflate, br" } });
  assert.equal(gzip.status, 200);
  assert.match(gzip.headers.get("cache-control") ?? "", /immutable/);
  assert.match(await gzip.text(), /swagger-ui/);
});
