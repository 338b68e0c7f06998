/**
 * `smcp console` (issue 26) in a real browser: Chromium driven by
 * playwright-core against a real `smcp serve` and real `smcp console`
 * processes. Screenshots go to docs/img/console-*.png (docs/console.md shows them).
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { runCli } from "../src/cli/run.js";
import { httpTransport } from "../src/client/http.js";
import { createClient } from "../src/index.js";
import { toKeys } from "../src/protocol/keys.js";
import { signMessage } from "../src/protocol/sign.js";
import { captureIO, connectionFlags } from "./cli-helpers.js";
import { CLIENT_ID, CLIENT_SECRET, SERVE_KEYS, SERVER_ID, SERVER_SECRET, until } from "./helpers.js";
import { type Child, startCli } from "./process-helpers.js";

/** The few browser globals the page-side functions below touch (the tests' tsconfig has no DOM lib). */
declare const document: { activeElement: { getAttribute(name: string): string | null } | null };
declare function getComputedStyle(element: unknown): { outlineStyle: string };

const CHROMIUM = "/usr/bin/chromium";
const IMG = fileURLToPath(new URL("../docs/img/", import.meta.url));
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const URL_LINE = /^console: (http:\/\/127\.0\.0\.1:(\d+)\/\?token=([A-Za-z0-9_-]{43}))$/;
/** Playwright's auto-waits give up after this (the machine is shared and slow at times). */
const WAIT = 20_000;

/** A response from the console with exactly the headers given (Host included), as no browser would send. */
function raw(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port, method, path, headers, setHost: false, agent: false }, (res) => {
      // An event stream never ends by itself: its head and first bytes are enough.
      if (res.headers["content-type"]?.startsWith("text/event-stream")) {
        res.once("data", (chunk: Buffer) => {
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: chunk.toString("utf8") });
          req.destroy();
        });
        return;
      }
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        text += c;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

/**
 * A fake server in front of the real one: it passes every request through,
 * except that it forges `batch_sum` answers (total 999) and signs them with
 * a key that is not the server's. Under `/forge-all/` it forges every answer.
 */
async function startForger(upstream: string): Promise<{ url: string; close: () => Promise<void> }> {
  const wrongKey = toKeys("not_the_server_secret_000", "forger")[0];
  assert.ok(wrongKey);
  const server: Server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => {
      body += c;
    });
    req.on("end", async () => {
      // Only signed envelopes are forged or passed on: the console's metrics sampler also GETs /metrics
      // beside the URL (every 2 s while a page is open), and a throw here would be an uncaught exception.
      let envelope: { request_id: string; tool: string };
      try {
        envelope = JSON.parse(body) as typeof envelope;
      } catch {
        res.writeHead(404).end();
        return;
      }
      if (envelope.tool === "batch_sum" || req.url?.startsWith("/forge-all/")) {
        const forged = signMessage(
          {
            v: "mcp/0.1",
            request_id: envelope.request_id,
            ts_ms: Date.now(),
            ok: true,
            server_id: SERVER_ID,
            status: "ok",
            result: envelope.tool === "batch_sum" ? { count: 1, total: 999 } : {},
            error: null,
          },
          wrongKey,
        );
        res.writeHead(200, { "content-type": "application/json" }).end(forged.body);
        return;
      }
      try {
        const answer = await fetch(upstream, { method: "POST", headers: { "content-type": "application/json" }, body });
        res.writeHead(answer.status, { "content-type": "application/json" }).end(Buffer.from(await answer.arrayBuffer()));
      } catch {
        res.writeHead(502).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const skip = existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (apt-get install -y chromium)`;

describe("smcp console in Chromium", { skip }, () => {
  const children: Child[] = [];
  const dir = mkdtempSync(join(tmpdir(), "smcp-console-test-"));
  const env = { SMCP_CONFIG: join(dir, "absent-keyring.json") };
  let serverUrl = "";
  let consoleUrl = "";
  let port = 0;
  let token = "";
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let forger: Awaited<ReturnType<typeof startForger>> | undefined;
  /** Errors the page logged or threw: there must be none. */
  const pageErrors: string[] = [];
  /** Every body the browser received from the console (bar the event stream), to look for secrets in. */
  const bodies: string[] = [];

  const startConsole = async (url: string) => {
    const child = await startCli(["console", ...connectionFlags(url)], env);
    children.push(child);
    const match = URL_LINE.exec(child.line);
    assert.ok(match, `the first stdout line is the URL: ${child.line}`);
    return match;
  };

  /** A page of the shared context that reports its errors and keeps the bodies it received. */
  const watchedPage = async () => {
    const p = await context.newPage();
    p.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") pageErrors.push(`${m.type()}: ${m.text()}`);
    });
    p.on("pageerror", (e) => pageErrors.push(`pageerror: ${e.message}`));
    p.on("response", async (r) => {
      if ((r.headers()["content-type"] ?? "").startsWith("text/event-stream")) return;
      bodies.push(await r.text().catch(() => ""));
    });
    return p;
  };

  /** Opens a view anew (a page load, not a hash change, so no form keeps what an earlier test typed). */
  const open = async (hash: string, on: Page = page) => {
    await on.goto("about:blank");
    return on.goto(`${consoleUrl}${hash}`);
  };

  before(async () => {
    mkdirSync(IMG, { recursive: true });
    const serve = await startCli(
      ["serve", "--port", "0", "--store", "memory", "--metrics", "--log-level", "silent", ...SERVE_KEYS],
      env,
    );
    children.push(serve);
    serverUrl = serve.line.replace(/^listening on /, "");
    const match = await startConsole(serverUrl);
    [, consoleUrl, , token] = match as unknown as [string, string, string, string];
    port = Number(match[2]);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    context = await browser.newContext({ viewport: { width: 1200, height: 820 } });
    page = await watchedPage();
  });

  after(async () => {
    await browser?.close();
    await forger?.close();
    for (const child of children) await child.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("prints one URL line with a 32-byte token; the page is locked down by its headers", async () => {
    assert.equal(Buffer.from(token, "base64url").length, 32);
    const response = await page.goto(consoleUrl);
    assert.equal(response?.status(), 200);
    const headers = response?.headers() ?? {};
    assert.match(headers["content-security-policy"] ?? "", /script-src 'self'/);
    assert.match(headers["content-security-policy"] ?? "", /frame-ancestors 'none'/);
    assert.equal(headers["x-frame-options"], "DENY");
    assert.equal(headers["referrer-policy"], "no-referrer");
    assert.equal(headers["cache-control"], "no-store");
    // No inline script: every script comes from the console's own bundle.
    const inline = await page.locator("script:not([src])").count();
    assert.equal(inline, 0);
  });

  it("says every answer is verified, with the server's key fingerprint from server_identity", async () => {
    const banner = page.locator("#verification");
    await banner.waitFor({ timeout: WAIT });
    const client = createClient({
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      serverId: SERVER_ID,
      serverSecret: SERVER_SECRET,
      transport: httpTransport(serverUrl),
    });
    const identity = (await client.call("server_identity", {})) as { fingerprint: string };
    const text = await banner.innerText();
    assert.match(text, /Every answer shown here was verified/);
    assert.ok(text.includes(identity.fingerprint), text);
    // The catalogue hides the protocol's own tools.
    const catalogue = await page.getByRole("navigation", { name: "Tools" }).innerText();
    assert.match(catalogue, /batch_sum/);
    assert.match(catalogue, /start_long_task/);
    for (const plumbing of ["poll_job", "cancel_job", "list_jobs", "list_tools", "server_identity"]) {
      assert.ok(!catalogue.includes(plumbing), plumbing);
    }
  });

  it("calls batch_sum through its form: the verified result, and the call in the history with its timing", async () => {
    await open("#/tools/batch_sum");
    await page.getByLabel("numbers, item 1").fill("1");
    await page.getByRole("button", { name: "Add an item to numbers" }).click();
    await page.getByLabel("numbers, item 2").fill("2.5");
    await page.getByRole("button", { name: "Add an item to numbers" }).click();
    await page.getByLabel("numbers, item 3").fill("3");
    await page.getByRole("button", { name: "Call", exact: true }).click();
    const answer = page.locator(".answer .outcome.ok");
    await answer.waitFor({ timeout: WAIT });
    const text = await answer.innerText();
    assert.match(text, /Verified answer/);
    assert.match(text, /"count": 3/);
    assert.match(text, /"total": 6\.5/);
    const row = page.locator(".history tbody tr").first();
    await row.waitFor({ timeout: WAIT });
    assert.match(await row.innerText(), /batch_sum\s+ok\s+[\d.]+ m?s/);
    await page.screenshot({ path: join(IMG, "console-tools.png"), fullPage: true });
  });

  it("a failed call shows its code, message and the bad_args issues' messages", async () => {
    await open("#/tools/batch_sum");
    // The list left empty: the server answers bad_args (numbers: at least one).
    await page.getByRole("button", { name: "Remove item 1 of numbers" }).click();
    await page.getByRole("button", { name: "Call", exact: true }).click();
    const failed = page.locator(".answer .outcome.failed");
    await failed.waitFor({ timeout: WAIT });
    const text = await failed.innerText();
    assert.match(text, /bad_args/);
    assert.match(text, /numbers/);
    assert.match(text, /A verified error answer/);
    await page.screenshot({ path: join(IMG, "console-bad-args.png"), fullPage: true });
  });

  it("starts start_long_task (2 s) and watches its progress, pushed live, reach done", async () => {
    await open("#/tools/start_long_task");
    await page.getByLabel("seconds").fill("2");
    await page.getByLabel("payload").fill('{"hello": "console"}');
    await page.getByRole("button", { name: "Start job" }).click();
    await page.getByRole("link", { name: "follow it" }).click();
    await page.locator(".job-status .state-done").waitFor({ timeout: WAIT });
    // The timeline shows the acceptance, the progress the job reported (1 of 2) and the end: each pushed
    // to the page by the event stream, fed by the console's long polls (the page itself polled once).
    const timeline = await page.locator(".timeline").innerText();
    assert.match(timeline, /queued/);
    assert.match(timeline, /running\s+1 \/ 2/);
    assert.match(timeline, /done/);
    assert.match(await page.locator(".job pre.result").innerText(), /"hello": "console"/);
    // The arguments it was started with (the console's own record: the server does not return them).
    assert.match(await page.locator(".job").innerText(), /"seconds": 2/);
    assert.match(await page.locator(".timings").innerText(), /Finished \(seen\)/);
    await page.screenshot({ path: join(IMG, "console-job.png"), fullPage: true });
  });

  it("cancels a running job; the list filters by state and tool", async () => {
    await open("#/tools/start_long_task");
    await page.getByLabel("seconds").fill("20");
    await page.getByRole("button", { name: "Start job" }).click();
    await page.getByRole("link", { name: "follow it" }).click();
    const jobId = decodeURIComponent(new URL(page.url()).hash.replace("#/jobs/", ""));
    // Running, with its first progress report (after a second).
    await page.locator(".job-status", { hasText: "1 / 20" }).waitFor({ timeout: WAIT });
    await page.getByRole("button", { name: `Cancel job ${jobId}` }).click();
    await page.locator(".job-status .state-cancelled").waitFor({ timeout: WAIT });
    // The server agrees.
    const client = createClient({
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      serverId: SERVER_ID,
      serverSecret: SERVER_SECRET,
      transport: httpTransport(serverUrl),
    });
    const polled = await client.poll(jobId);
    assert.equal(polled.result?.code, "cancelled");

    await page.getByRole("link", { name: "Jobs", exact: true }).click();
    await page.getByLabel("State", { exact: true }).selectOption("cancelled");
    await page.locator(`tr[data-job-id="${jobId}"]`).waitFor({ timeout: WAIT });
    assert.equal(await page.locator(".job-table tbody tr").count(), 1);
    await page.getByLabel("State", { exact: true }).selectOption("");
    await page.getByLabel("Tool", { exact: true }).selectOption("start_long_task");
    await page.locator(".job-table tbody tr").nth(1).waitFor({ timeout: WAIT });
    const states = await page.locator(".job-table tbody .state").allInnerTexts();
    assert.deepEqual(states.sort(), ["cancelled", "done"]);
    await page.screenshot({ path: join(IMG, "console-jobs.png"), fullPage: true });
  });

  it("the server panel: identity, fingerprint, algorithms, and metrics as charts", async () => {
    await open("#/server");
    const identity = page.locator("dl.identity");
    await identity.waitFor({ timeout: WAIT });
    const text = await identity.innerText();
    assert.match(text, new RegExp(SERVER_ID));
    assert.match(text, /hmac-sha256/);
    assert.match(text, new RegExp(CLIENT_ID));
    // Two scrapes make the first point (the console reads /metrics every 2 s while a page is open).
    await page.locator(".chart figcaption .now", { hasText: /\d/ }).first().waitFor({ timeout: WAIT });
    assert.equal(await page.locator(".chart svg[role=img]").count(), 3);
    // The bad_args call above is counted by the server, by code.
    await page.locator(".bars", { hasText: "bad_args" }).waitFor({ timeout: WAIT });
    await page.screenshot({ path: join(IMG, "console-server.png"), fullPage: true });
  });

  it("works with the keyboard alone, with the focus visible", async () => {
    await open("#/tools/batch_sum");
    await page.getByLabel("numbers, item 1").waitFor({ timeout: WAIT });
    // Tab from the top of the page to the form's first input.
    let reached = false;
    for (let i = 0; i < 30 && !reached; i++) {
      await page.keyboard.press("Tab");
      reached = await page.evaluate(() => document.activeElement?.getAttribute("aria-label") === "numbers, item 1");
    }
    assert.ok(reached, "the first input is reachable with Tab");
    await page.keyboard.type("4");
    await page.keyboard.press("Tab"); // Remove
    await page.keyboard.press("Tab"); // Add item
    const outline = await page.evaluate(() => {
      const el = document.activeElement;
      return { label: el?.getAttribute("aria-label"), style: getComputedStyle(el).outlineStyle };
    });
    assert.equal(outline.label, "Add an item to numbers");
    assert.notEqual(outline.style, "none", "the focused button shows an outline");
    await page.keyboard.press("Enter"); // a new row, focused
    await page.keyboard.type("5");
    await page.keyboard.press("Enter"); // submits the form
    await page.locator(".answer .outcome.ok", { hasText: '"total": 9' }).waitFor({ timeout: WAIT });
  });

  it("refuses requests without the token (page, API, event stream), from another Host or Origin, and non-JSON actions", async () => {
    const host = { host: `127.0.0.1:${port}` };
    const auth = { ...host, authorization: `Bearer ${token}` };
    const wrong = `${token.slice(0, -1)}${token.endsWith("A") ? "B" : "A"}`;
    for (const path of ["/", "/static/app.js", "/api/session", "/api/jobs", "/api/events", "/api/metrics"]) {
      assert.equal((await raw(port, "GET", path, host)).status, 401, `${path} without a token`);
      assert.equal((await raw(port, "GET", `${path}?token=${wrong}`, host)).status, 401, `${path} with a wrong token`);
      assert.equal((await raw(port, "GET", path, { ...host, authorization: `Bearer ${wrong}` })).status, 401, path);
    }
    const call = JSON.stringify({ tool: "batch_sum", args: { numbers: [1] } });
    const json = { "content-type": "application/json" };
    assert.equal((await raw(port, "POST", "/api/call", { ...host, ...json }, call)).status, 401);
    // DNS rebinding: the right token, but the Host a rebound name would carry.
    assert.equal((await raw(port, "GET", `/?token=${token}`, { host: `evil.example:${port}` })).status, 403);
    assert.equal((await raw(port, "GET", `/?token=${token}`, { host: `127.0.0.1:${port + 1}` })).status, 403);
    // Another page's script.
    const evil = { ...auth, ...json, origin: "http://evil.example" };
    assert.equal((await raw(port, "POST", "/api/call", evil, call)).status, 403);
    assert.equal((await raw(port, "POST", "/api/call", { ...auth, ...json, "sec-fetch-site": "cross-site" }, call)).status, 403);
    // Actions are JSON POSTs only (a form post is text/plain or urlencoded).
    assert.equal((await raw(port, "POST", "/api/call", { ...auth, "content-type": "text/plain" }, call)).status, 415);
    assert.equal((await raw(port, "GET", "/api/call", auth)).status, 404);
    assert.equal((await raw(port, "PUT", "/api/call", { ...auth, ...json }, call)).status, 405);
    // With everything right: 200, and the stream opens.
    const ok = await raw(port, "POST", "/api/call", { ...auth, ...json, origin: `http://127.0.0.1:${port}` }, call);
    assert.equal(ok.status, 200);
    const stream = await raw(port, "GET", `/api/events?token=${token}`, host);
    assert.equal(stream.status, 200);
    assert.equal(stream.headers["content-type"], "text/event-stream; charset=utf-8");
    assert.equal(stream.headers["x-frame-options"], "DENY");

    // And in the browser: the page without its token is refused, and shows nothing of the console.
    const stranger = await browser.newPage();
    const refused = await stranger.goto(consoleUrl.replace(/\?token=.*$/, ""));
    assert.equal(refused?.status(), 401);
    assert.match(await stranger.locator("body").innerText(), /token/);
    assert.equal(await stranger.locator("#app").count(), 0);
    await stranger.close();
  });

  it("a forged answer from a fake server is refused, never shown as a result", async () => {
    forger = await startForger(`${serverUrl}/mcp`);
    const [, forgedConsole] = (await startConsole(`${forger.url}/mcp`)) as unknown as [string, string];
    const forgedPage = await watchedPage();
    await forgedPage.goto(`${forgedConsole}#/tools/batch_sum`);
    await forgedPage.getByLabel("numbers, item 1").fill("1");
    await forgedPage.getByRole("button", { name: "Call", exact: true }).click();
    const refused = forgedPage.locator(".answer .outcome.refused");
    await refused.waitFor({ timeout: WAIT });
    const text = await refused.innerText();
    assert.match(text, /Answer refused: it failed verification/);
    assert.match(text, /bad_signature/);
    assert.ok(!(await forgedPage.locator("main").innerText()).includes("999"), "the forged total is not shown");
    assert.match(await forgedPage.locator(".history tbody tr").first().innerText(), /refused: bad_signature/);
    await forgedPage.screenshot({ path: join(IMG, "console-refused.png"), fullPage: true });
    await forgedPage.close();

    // A server whose every answer is forged: the banner says so, and lists no tools.
    const [, allForged] = (await startConsole(`${forger.url}/forge-all/mcp`)) as unknown as [string, string];
    const allPage = await watchedPage();
    await allPage.goto(allForged);
    const banner = allPage.locator("#verification.refused");
    await banner.waitFor({ timeout: WAIT });
    assert.match(await banner.innerText(), /fail verification \(bad_signature/);
    assert.equal(await allPage.locator(".catalogue li").count(), 0);
    await allPage.close();
  });

  it("no secret reached the browser, and the pages logged no error", () => {
    assert.ok(bodies.length > 10, `bodies seen: ${bodies.length}`);
    for (const body of bodies) {
      assert.ok(!body.includes(CLIENT_SECRET), "the client secret is never sent to the page");
      assert.ok(!body.includes(SERVER_SECRET), "the server secret is never sent to the page");
    }
    assert.deepEqual(pageErrors, []);
  });
});

describe("smcp jobs --tool, smcp console --help", () => {
  it("lists only the jobs of one tool, with the state filter beside it", async () => {
    const serve = await startCli(["serve", "--port", "0", "--store", "memory", "--log-level", "silent", ...SERVE_KEYS]);
    try {
      const url = serve.line.replace(/^listening on /, "");
      const client = createClient({
        clientId: CLIENT_ID,
        clientSecret: CLIENT_SECRET,
        serverId: SERVER_ID,
        serverSecret: SERVER_SECRET,
        transport: httpTransport(url),
      });
      const { job_id } = (await client.call("start_long_task", { seconds: 20 })) as { job_id: string };
      await client.call("batch_sum", { numbers: [1] });
      const jobs = async (...flags: string[]) => {
        const io = captureIO({});
        const code = await runCli(["jobs", ...flags, ...connectionFlags(url)], io);
        return { code, out: io.outText(), err: io.errText() };
      };
      const long = await jobs("--tool", "start_long_task");
      assert.equal(long.code, 0);
      assert.ok(long.out.includes(job_id), long.out);
      const none = await jobs("--tool", "batch_sum");
      assert.equal(none.out, "");
      assert.match(none.err, /no jobs/);
      await client.cancel(job_id);
      assert.ok((await jobs("--tool", "start_long_task", "--state", "cancelled")).out.includes(job_id));
      assert.equal((await jobs("--tool", "start_long_task", "--state", "running")).out, "");
    } finally {
      await serve.stop();
    }
  });

  it("--open hands the browser a private redirect file, never the token on a command line; the file goes at exit", {
    skip: process.platform === "linux" ? false : "xdg-open is how Linux desktops open files",
  }, async () => {
    const bin = mkdtempSync(join(tmpdir(), "smcp-console-open-"));
    try {
      // A stand-in for the desktop's opener: it records what it was asked to open. Written then renamed, so
      // the file appears whole (a plain `>` creates it empty first, and the test read '' once in CI).
      const asked = join(bin, "asked");
      writeFileSync(join(bin, "xdg-open"), `#!/bin/sh\nprintf '%s' "$*" > "${asked}.tmp" && mv "${asked}.tmp" "${asked}"\n`, {
        mode: 0o755,
      });
      const child = await startCli(["console", "--open", "--url", "http://127.0.0.1:9/mcp", ...connectionFlags("x").slice(2)], {
        PATH: `${bin}:${process.env.PATH}`,
        SMCP_CONFIG: join(bin, "absent.json"),
      });
      try {
        const [, url, , token] = URL_LINE.exec(child.line) as unknown as [string, string, string, string];
        await until(() => existsSync(asked), WAIT, "xdg-open to be run");
        const opened = readFileSync(asked, "utf8");
        assert.ok(!opened.includes(token), "the token is not on xdg-open's command line");
        assert.equal(statSync(opened).mode & 0o777, 0o600);
        assert.equal(statSync(dirname(opened)).mode & 0o777, 0o700);
        assert.ok(readFileSync(opened, "utf8").includes(url), "the file redirects to the console's URL");
        assert.equal(await child.stop(), 0);
        assert.equal(existsSync(opened), false, "removed when the console stops");
      } finally {
        await child.stop();
      }
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });

  it("--help says what the console is and how it is reached", async () => {
    const io = captureIO({});
    assert.equal(await runCli(["console", "--help"], io), 0);
    assert.match(io.outText(), /console: http:\/\/127\.0\.0\.1:PORT\/\?token=TOKEN/);
    assert.match(io.outText(), /--metrics-url URL/);
  });
});
