// Every page, in light and dark: it renders in the layout with the
// navigation, axe-core finds no serious or critical violation, nothing
// is requested from another origin, nothing is logged as an error, the
// page fits 768 px without scrolling sideways; and a screenshot of each
// is saved.

import { test, before, beforeEach, after } from "node:test";
import assert from "node:assert/strict";
import { Browser, NAV, axeViolations, check, customerId, screenshot, server } from "../lib/harness.js";

let browser;
let extra;
before(async () => {
  browser = await Browser.launch();
  // Something to show: one decision of each outcome.
  await check({ model: "gpt-4", operation: "classify", metadata: {} });
  const blocked = await check({ model: "gpt-4", operation: "summarise", metadata: { contains_personal_data: true } });
  const customer = await customerId(server.appCustomer);
  extra = [
    ["customer", `/ui/customers/${customer}`],
    ["rule", "/ui/rules/contains_personal_data"],
    ["replay", "/ui/rules/replay?file=risk.warden"],
    ["decision", `/ui/logs/${blocked.body.decision_id}`],
    ["not-found", "/ui/no-such-page"],
  ];
});
beforeEach(() => browser?.reset());
after(async () => {
  await browser?.close();
});

function pages() {
  return [...NAV.map(([name, path]) => [name.toLowerCase(), path]), ...extra, ["login", "/ui/login"]];
}

/** What is wrong with the page at `path` in `page` (empty: nothing). */
async function inspect(page, name, path) {
  const problems = [];
  const response = await page.goto(path);
  await page.waitForLoadState("networkidle");
  const status = name === "not-found" ? 404 : 200;
  if (response.status() !== status) return [`${path}: status ${response.status()}, not ${status}`];
  if (name !== "login") {
    const nav = page.getByRole("navigation", { name: "Main" });
    for (const [label] of NAV) {
      if ((await nav.getByRole("link", { name: label, exact: true }).count()) !== 1) problems.push(`${path}: no nav link ${label}`);
    }
    if ((await page.getByRole("button", { name: "Sign out" }).count()) !== 1) problems.push(`${path}: no Sign out`);
  }
  for (const v of await axeViolations(page)) problems.push(`${path}: ${v}`);
  return problems;
}

for (const theme of ["light", "dark"]) {
  test(`every page in ${theme} mode: layout, axe-core, screenshot`, async () => {
    const signedIn = await browser.context({ role: "admin", colorScheme: theme });
    const anonymous = await browser.context({ colorScheme: theme });
    const problems = [];
    browser.expected.push(/status of 404/);
    for (const [name, path] of pages()) {
      const page = await (name === "login" ? anonymous : signedIn).newPage();
      problems.push(...(await inspect(page, name, path)));
      await screenshot(page, name, theme);
      await page.close();
    }
    browser.expected.pop();
    await signedIn.close();
    await anonymous.close();
    assert.deepEqual(problems, [], `pages in ${theme} mode`);
    browser.assertClean();
  });
}

test("every page fits 768 px without scrolling sideways", async () => {
  const context = await browser.context({ role: "admin", viewport: { width: 768, height: 1024 } });
  const page = await context.newPage();
  const wide = [];
  for (const [name, path] of pages()) {
    if (name === "not-found") continue;
    const response = await page.goto(path);
    if (response.status() !== 200) {
      wide.push(`${path}: status ${response.status()}`);
      continue;
    }
    const [scroll, client] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
    if (scroll > client) wide.push(`${path}: ${scroll}px wide`);
  }
  await context.close();
  assert.deepEqual(wide, []);
  browser.assertClean();
});

test("pages work without JavaScript: every navigation link opens its page", async () => {
  const context = await browser.context({ role: "admin", javaScript: false });
  const page = await context.newPage();
  await page.goto("/ui/");
  for (const [label, path] of NAV) {
    await page.getByRole("navigation").first().getByRole("link", { name: label, exact: true }).click();
    await page.waitForURL((url) => url.pathname === path);
    assert.equal(await page.locator("h1").count(), 1, `${path} has one heading`);
  }
  await context.close();
  browser.assertClean();
});
