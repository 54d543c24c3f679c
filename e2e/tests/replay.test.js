// Rules -> Replay: a candidate file loaded from disk (the file input fills
// the form; without JavaScript, pasting does the same) is replayed against
// the recorded decisions, and the report names what would change.

import { test, before, beforeEach, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Browser, check, submit } from "../lib/harness.js";

let browser;
before(async () => {
  browser = await Browser.launch();
});
beforeEach(() => browser?.reset());
after(async () => {
  await browser?.close();
});

test("a candidate file loaded from disk is replayed and the report shows the flips", async () => {
  // Three external-model decisions, blocked at 50 by the served set.
  for (let i = 0; i < 3; i++) {
    const d = await check({ model: "gpt-4", operation: "classify", metadata: { is_external_model: true } });
    assert.equal(d.body.allowed, false);
  }
  const risk = readFileSync(new URL("../../policies/risk.warden", import.meta.url), "utf8");
  const candidate = risk.replace("score +50", "score +30");

  const context = await browser.context({ role: "admin" });
  const page = await context.newPage();
  await page.goto("/ui/rules");
  await page.getByRole("link", { name: "Replay a candidate" }).click();
  await page.waitForURL(/\/ui\/rules\/replay$/);
  await page.getByLabel("Load from a file (optional)").setInputFiles({
    name: "risk.warden",
    mimeType: "text/plain",
    buffer: Buffer.from(candidate),
  });
  await page.waitForFunction(() => document.getElementById("text").value.includes("score +30"));
  assert.equal(await page.getByLabel("File name").inputValue(), "risk.warden", "the file's name fills the name");
  await submit(page, page.getByRole("button", { name: "Replay" }));
  const report = page.getByRole("region", { name: "What would change" });
  await report.waitFor();
  const stat = report.locator(".stat", { hasText: "Blocked → allowed" }).locator(".stat-value");
  assert.ok(Number(await stat.textContent()) >= 3, "the external-model decisions would now be allowed");
  assert.match(await report.textContent(), /external_model/, "the rule behind them is named");
  await context.close();
  browser.assertClean();
});
