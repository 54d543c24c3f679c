// Signing in and out: a wrong key shows an error and sets no cookie; the
// admin key signs in with a cookie the page's scripts can't read; Sign out
// ends the session on the server, so replaying the old cookie fails.

import { test, before, beforeEach, after } from "node:test";
import assert from "node:assert/strict";
import { Browser, server, signIn, storage } from "../lib/harness.js";

let browser;
before(async () => {
  browser = await Browser.launch();
});
beforeEach(() => browser?.reset());
after(async () => {
  await browser?.close();
});

test("a wrong key shows an error and sets no cookie", async () => {
  const context = await browser.context();
  const page = await context.newPage();
  // The refused sign-in answers 4xx; the browser logs the status.
  browser.expected.push(/status of 4\d\d/);
  for (const key of ["wk_not-a-key", server.appKey]) {
    await signIn(page, key);
    assert.match(new URL(page.url()).pathname, /^\/ui\/login/);
    await page.getByRole("alert").first().waitFor();
    assert.deepEqual(await context.cookies(), [], `no cookie after signing in with a ${key === server.appKey ? "app" : "wrong"} key`);
    assert.equal(await page.getByLabel("Admin key").inputValue(), "", "the key field is not refilled");
  }
  browser.expected.pop();
  await context.close();
  browser.assertClean();
});

test("the admin key signs in; Sign out ends the session and the old cookie fails", async () => {
  const context = await browser.context();
  const page = await context.newPage();
  // A page asked for before signing in comes back after it.
  await page.goto("/ui/keys");
  assert.match(new URL(page.url()).pathname, /^\/ui\/login/);
  await signIn(page, server.adminKey);
  assert.equal(new URL(page.url()).pathname, "/ui/keys");

  const cookies = await context.cookies();
  assert.equal(cookies.length, 1, `one cookie: ${cookies.map((c) => c.name).join(", ")}`);
  const [cookie] = cookies;
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, "Strict");
  assert.ok(!cookie.value.includes(server.adminKey), "the cookie does not hold the key");
  assert.equal(await page.evaluate(() => document.cookie), "", "no cookie readable by scripts");
  const stored = await storage(page);
  assert.ok(!stored.includes(server.adminKey) && !stored.includes(cookie.value), "no secret in web storage");

  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/\/ui\/login/);
  assert.deepEqual(await context.cookies(), [], "Sign out clears the cookie");

  // The old cookie, replayed, is refused: the session is gone on the server.
  const replay = await browser.context();
  await replay.addCookies([cookie]);
  const again = await replay.newPage();
  await again.goto("/ui/keys");
  assert.match(new URL(again.url()).pathname, /^\/ui\/login/);
  await replay.close();
  await context.close();
  browser.assertClean();
});

test("a Bearer key does not open the dashboard", async () => {
  const response = await fetch(new URL("/ui/keys", server.base), {
    headers: { authorization: `Bearer ${server.adminKey}` },
    redirect: "manual",
  });
  assert.notEqual(response.status, 200);
});
