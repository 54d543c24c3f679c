// What every browser test shares: the running server (started by
// scripts/e2e.sh, which passes its address and keys in the environment),
// the browser, and the checks made on every page: no request leaves the
// origin, no console error, no serious or critical axe-core violation.

import { readFileSync, mkdirSync, existsSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);

function env(name) {
  const value = process.env[name];
  if (value === undefined) {
    throw new Error(`${name} is not set: run the browser tests with scripts/e2e.sh`);
  }
  return value;
}

/** The server under test and the keys scripts/e2e.sh created for it. */
export const server = {
  base: env("WARDEN_E2E_URL"),
  adminKey: env("WARDEN_E2E_ADMIN_KEY"),
  appKey: env("WARDEN_E2E_APP_KEY"),
  /** The customer the app key belongs to. */
  appCustomer: env("WARDEN_E2E_APP_CUSTOMER"),
  /** Empty when this build's `warden keys create` has no `--viewer`. */
  viewerKey: process.env.WARDEN_E2E_VIEWER_KEY ?? "",
  /** Where sessions signed in once are kept for the other tests. */
  work: env("WARDEN_E2E_WORK"),
  screenshots: env("WARDEN_E2E_SCREENSHOTS"),
};

/** Every page of the navigation, as the issue names them, with its URL. */
export const NAV = [
  ["Overview", "/ui/"],
  ["Keys", "/ui/keys"],
  ["Customers", "/ui/customers"],
  ["Rules", "/ui/rules"],
  ["Logs", "/ui/logs"],
  ["Playground", "/ui/playground"],
  ["Audit", "/ui/audit"],
  ["Status", "/ui/status"],
];

const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

/**
 * A browser with one context per test. The context aborts, and counts, every
 * request to another origin, and each page records its console errors,
 * uncaught exceptions and Content-Security-Policy violations.
 */
export class Browser {
  static async launch() {
    const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium" });
    return new Browser(browser);
  }

  constructor(browser) {
    this.browser = browser;
    /** URLs of requests that tried to leave the origin. */
    this.offOrigin = [];
    /** Console errors, page errors and CSP violations, with the page URL. */
    this.errors = [];
    /** Console errors a test expects (regular expressions). */
    this.expected = [];
  }

  /** A fresh context (no cookies), optionally signed in as `role`. */
  async context({ role, colorScheme = "light", viewport = { width: 1280, height: 800 }, javaScript = true } = {}) {
    const storageState = role ? await this.sessionState(role) : undefined;
    const context = await this.browser.newContext({
      baseURL: server.base,
      viewport,
      colorScheme,
      storageState,
      javaScriptEnabled: javaScript,
    });
    await this.guard(context);
    return context;
  }

  /** A new context's timeouts: short, so a missing element fails fast. */
  static timeouts(context) {
    context.setDefaultTimeout(10_000);
    context.setDefaultNavigationTimeout(15_000);
  }

  async guard(context) {
    Browser.timeouts(context);
    const origin = new URL(server.base).origin;
    await context.route("**/*", (route) => {
      const url = route.request().url();
      if (new URL(url).origin !== origin) {
        this.offOrigin.push(url);
        return route.abort("blockedbyclient");
      }
      return route.continue();
    });
    // Runs outside the page's CSP (injected by the browser, not the page).
    await context.addInitScript(() => {
      document.addEventListener("securitypolicyviolation", (e) => {
        console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"} (${e.sourceFile}:${e.lineNumber}:${e.columnNumber}; ${e.sample})`);
      });
    });
    context.on("page", (page) => this.watch(page));
  }

  watch(page) {
    page.on("console", (msg) => {
      if (msg.type() !== "error") return;
      const text = msg.text();
      if (this.expected.some((re) => re.test(text))) return;
      this.errors.push(`${page.url()}: ${text}`);
    });
    page.on("pageerror", (err) => this.errors.push(`${page.url()}: uncaught ${err.message}`));
  }

  /**
   * Storage state (the session cookie) of a session for `role` ("admin" or
   * "viewer"), signed in through the form once per run and kept in the work
   * directory, so the tests stay under the sign-in rate limit.
   */
  async sessionState(role) {
    const file = join(server.work, `session-${role}.json`);
    if (existsSync(file)) return file;
    const key = role === "viewer" ? server.viewerKey : server.adminKey;
    const context = await this.browser.newContext({ baseURL: server.base });
    await this.guard(context);
    const page = await context.newPage();
    await signIn(page, key);
    assert.doesNotMatch(new URL(page.url()).pathname, /^\/ui\/login/, `signing in as ${role}`);
    writeFileSync(file, JSON.stringify(await context.storageState()));
    await context.close();
    return file;
  }

  /** Forgets what earlier tests recorded (each test starts clean). */
  reset() {
    this.offOrigin.length = 0;
    this.errors.length = 0;
    this.expected.length = 0;
  }

  /**
   * Fails when a request left the origin or a page logged an error since
   * the last call (each test ends with one).
   */
  assertClean() {
    const offOrigin = this.offOrigin.splice(0);
    const errors = this.errors.splice(0);
    assert.deepEqual(offOrigin, [], "requests to another origin (aborted)");
    assert.deepEqual(errors, [], "console errors, uncaught exceptions or CSP violations");
  }

  async close() {
    await this.browser.close();
  }
}

/**
 * Signs in through the form with `key` (on the sign-in page the browser is
 * on, which may hold where to go next); resolves on the page after it.
 */
export async function signIn(page, key) {
  if (!page.url().startsWith(`${server.base}/ui/login`)) await page.goto("/ui/login");
  await page.getByLabel("Admin key").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForLoadState("networkidle");
}

/** The page's serious and critical axe-core violations, described. */
export async function axeViolations(page) {
  // evaluate() runs through the DevTools protocol, outside the page's CSP.
  await page.evaluate(axeSource);
  const results = await page.evaluate(() =>
    // eslint-disable-next-line no-undef
    axe.run(document, { resultTypes: ["violations"] }),
  );
  return results.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(" ")).slice(0, 5).join(", ")}`);
}

/** Saves a screenshot as `<name>-<theme>.png` in the screenshot directory. */
export async function screenshot(page, name, theme) {
  mkdirSync(server.screenshots, { recursive: true });
  // caret: "initial": hiding the caret would add an inline style, which
  // the page's Content-Security-Policy refuses (and reports).
  await page.screenshot({ path: join(server.screenshots, `${name}-${theme}.png`), caret: "initial" });
}

/** Calls the JSON API with a Bearer key; returns {status, body}. */
export async function api(method, path, { key = server.adminKey, body } = {}) {
  const response = await fetch(new URL(path, server.base), {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, body: json, text };
}

/** `POST /v1/check` with `body` and an app key. */
export function check(body, key = server.appKey) {
  return api("POST", "/v1/check", { key, body });
}

/**
 * `POST /v1/check` until `wanted(decision)` holds (at most 50 times, 100 ms
 * apart: a change reaches the served snapshot asynchronously); returns the
 * last answer, for the caller to assert on.
 */
export async function checkUntil(body, wanted, key = server.appKey) {
  let answer;
  for (let i = 0; i < 50; i += 1) {
    answer = await check(body, key);
    if (answer.status === 200 && wanted(answer.body)) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return answer;
}

/** The id of the customer with this email or name, from the admin API. */
export async function customerId(email) {
  const { status, body } = await api("GET", "/api/admin/customers");
  assert.equal(status, 200);
  const list = Array.isArray(body) ? body : (body.customers ?? body.items ?? []);
  const found = list.find((c) => c.email === email || c.name === email);
  assert.ok(found, `customer ${email} in ${JSON.stringify(body).slice(0, 300)}`);
  return found.id;
}

/** A string unique to this run, for names and canaries. */
export function unique(prefix) {
  return `${prefix}-${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
}

/**
 * Clicks `control` (or, with `keyboard`, presses Enter on it) and waits for
 * the form post it sends to be answered without an error, then for the
 * page it leads to: the change is made before the test goes on.
 */
export async function submit(page, control, { keyboard = false } = {}) {
  const answered = page.waitForResponse((r) => r.request().method() === "POST");
  if (keyboard) {
    await control.focus();
    await page.keyboard.press("Enter");
  } else {
    await control.click();
  }
  const response = await answered;
  assert.ok(response.status() < 400, `POST ${response.url()} answered ${response.status()}`);
  await page.waitForLoadState("networkidle");
  return response;
}

/**
 * Presses Tab until `locator` has the focus (at most 200 times): reaching
 * a control with the keyboard alone.
 */
export async function tabTo(page, locator) {
  const target = await locator.elementHandle();
  for (let i = 0; i < 200; i += 1) {
    if (await target.evaluate((el) => el === document.activeElement)) return;
    await page.keyboard.press("Tab");
  }
  throw new Error(`Tab never reached ${locator}`);
}

/** Everything in the page's localStorage and sessionStorage, as one string. */
export function storage(page) {
  return page.evaluate(() => JSON.stringify([{ ...localStorage }, { ...sessionStorage }]));
}
