/**
 * Generative test of `smcp console`'s HTTP surface (issue 26): random
 * methods, paths, Host and Origin headers, fetch metadata, tokens (missing,
 * near misses, in the query or a header), content types and bodies, sent
 * over real HTTP to a console on 127.0.0.1 whose client talks to a real
 * server. Never a 200 unless the token, Host and Origin are right; a refusal
 * is 401/403 before anything is routed; never a 5xx; every answer carries
 * the security headers; the console still answers afterwards.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { ConsoleBackend } from "../src/console/backend.js";
import { MetricsSampler } from "../src/console/metrics.js";
import { type RunningConsole, startConsole } from "../src/console/server.js";
import { runProperty } from "./fuzz/run.js";
import { pair } from "./helpers.js";

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
}

/** Sends one request with exactly these headers (Host included) and reads the answer's head (and body, unless a stream). */
function send(port: number, method: string, path: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port, method, path, headers, setHost: false, agent: false }, (res) => {
      const answer = { status: res.statusCode ?? 0, headers: res.headers };
      if (res.headers["content-type"]?.startsWith("text/event-stream")) {
        req.destroy(); // a stream never ends by itself; its head is what is checked
        resolve(answer);
        return;
      }
      res.resume();
      res.on("end", () => resolve(answer));
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("smcp console's HTTP surface (generative)", () => {
  const made = pair();
  const assets = mkdtempSync(join(tmpdir(), "smcp-console-fuzz-"));
  let running: RunningConsole;
  let token = "";
  let port = 0;

  before(async () => {
    // The page's bundle is not what is tested here: stand-ins keep the test independent of the build.
    writeFileSync(join(assets, "app.js"), "export {};\n");
    writeFileSync(join(assets, "app.css"), "\n");
    const metrics = new MetricsSampler(null);
    const backend = new ConsoleBackend({
      client: made.client,
      url: "in-process",
      verification: "hmac-sha256",
      longPollMs: 1000,
      metrics,
    });
    running = await startConsole({ backend, metrics, assetsDir: assets });
    token = new URL(running.url).searchParams.get("token") ?? "";
    port = running.port;
  });

  after(async () => {
    await running?.close();
    await made.server.close();
    rmSync(assets, { recursive: true, force: true });
  });

  it("never 200 without the right token, Host and Origin; refusals before routing; never a 5xx", async (t) => {
    const flip = (s: string, i: number) => {
      const at = i % s.length;
      return `${s.slice(0, at)}${s[at] === "A" ? "B" : "A"}${s.slice(at + 1)}`;
    };
    const printable = fc.stringMatching(/^[\x21-\x7e]{0,48}$/);
    // Weighted toward the right values, so that many cases get past one check to meet the next.
    const tokens = fc.oneof(
      { arbitrary: fc.constant(() => token), weight: 6 },
      fc.nat().map((i) => () => flip(token, i)),
      fc.constant(() => token.slice(0, -1)),
      fc.constant(() => `${token}x`),
      fc.constant(() => token.toUpperCase()),
      fc.constant(() => ""),
      fc.stringMatching(/^[A-Za-z0-9_-]{43}$/).map((s) => () => s),
    );
    const hosts = fc.oneof(
      { arbitrary: fc.constant(() => `127.0.0.1:${port}`), weight: 8 },
      { arbitrary: fc.constant(() => `localhost:${port}`), weight: 2 },
      fc.constant(() => `LocalHost:${port}`),
      fc.constant(() => `127.0.0.1:${port + 1}`),
      fc.constant(() => `evil.example:${port}`),
      fc.constant(() => "127.0.0.1"),
      fc.constant(() => `[::1]:${port}`),
      printable.map((s) => () => s),
    );
    const origins = fc.option(
      fc.oneof(
        { arbitrary: fc.constant(() => `http://127.0.0.1:${port}`), weight: 5 },
        fc.constant(() => `http://localhost:${port}`),
        fc.constant(() => `https://127.0.0.1:${port}`),
        fc.constant(() => "http://evil.example"),
        fc.constant(() => "null"),
        printable.map((s) => () => s),
      ),
      { nil: undefined, freq: 2 },
    );
    const paths = fc.oneof(
      fc.constantFrom(
        "/",
        "/static/app.js",
        "/static/app.css",
        "/api/session",
        "/api/tools",
        "/api/jobs",
        "/api/jobs?state=running&tool=batch_sum",
        "/api/jobs?state=bogus",
        "/api/jobs/some-job",
        "/api/jobs/some-job/cancel",
        "/api/jobs/%ZZ",
        "/api/jobs/%ZZ/cancel",
        "/api/call",
        "/api/metrics",
        "/api/events",
        "//api/session",
        "/api/session/",
        "/API/SESSION",
        "/%2e%2e/api/session",
        "/static/../api/session",
      ),
      fc.webPath().map((p) => (p.startsWith("/") ? p : `/${p}`)),
    );
    const bodies = fc.option(
      fc.oneof(
        fc.constant('{"tool":"batch_sum","args":{"numbers":[1,2]}}'),
        fc.constant('{"tool":"poll_job","args":{"job_id":"x"}}'),
        fc.constant('{"tool":"batch_sum","args":[]}'),
        fc.constant("[]"),
        fc.json(),
        fc.string({ maxLength: 200 }),
      ),
      { nil: undefined },
    );
    const request = fc.record({
      method: fc.oneof(
        { arbitrary: fc.constantFrom("GET", "POST"), weight: 5 },
        fc.constantFrom("PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"),
      ),
      path: paths,
      tokenAt: fc.constantFrom("query", "header", "both", "none", "bad-scheme"),
      token: tokens,
      host: hosts,
      origin: origins,
      site: fc.option(fc.constantFrom("same-origin", "same-site", "cross-site", "none"), { nil: undefined, freq: 2 }),
      type: fc.option(fc.constantFrom("application/json", "application/json; charset=utf-8", "text/plain", "APPLICATION/JSON"), {
        nil: undefined,
      }),
      body: bodies,
    });

    const statuses = new Map<number, number>();
    await runProperty(
      t,
      request,
      async (r) => {
        const value = r.token();
        const host = r.host();
        const origin = r.origin?.();
        const headers: Record<string, string> = { host };
        if (origin !== undefined) headers.origin = origin;
        if (r.site !== undefined) headers["sec-fetch-site"] = r.site;
        if (r.type !== undefined) headers["content-type"] = r.type;
        if (r.tokenAt === "header" || r.tokenAt === "both") headers.authorization = `Bearer ${value}`;
        if (r.tokenAt === "bad-scheme") headers.authorization = `Basic ${value}`;
        const inQuery = r.tokenAt === "query" || r.tokenAt === "both";
        const path = inQuery ? `${r.path}${r.path.includes("?") ? "&" : "?"}token=${encodeURIComponent(value)}` : r.path;
        const answer = await send(port, r.method, path, headers, r.method === "GET" || r.method === "HEAD" ? undefined : r.body);
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);

        // The model of who may pass: the console's Host, its own Origin (if any), no cross-site fetch, the token.
        const lowerHost = host.toLowerCase();
        const hostOk = lowerHost === `127.0.0.1:${port}` || lowerHost === `localhost:${port}`;
        const originOk = origin === undefined || origin === `http://${lowerHost}`;
        const siteOk = r.site === undefined || r.site === "same-origin" || r.site === "none";
        const tokenOk = (r.tokenAt === "header" || r.tokenAt === "both" || inQuery) && value === token;
        const allowed = hostOk && originOk && siteOk && tokenOk;

        assert.ok(answer.status < 500, `no 5xx: ${answer.status}`);
        if (answer.status === 200) assert.ok(allowed, `200 only with the right token, Host and Origin (got ${answer.status})`);
        // A bad request target is refused before it is checked at all (still not a 200).
        if (!allowed && answer.status !== 400) assert.ok([401, 403].includes(answer.status), `refused: ${answer.status}`);
        if (answer.status !== 400 || allowed) {
          assert.match(String(answer.headers["content-security-policy"]), /script-src 'self'/);
          assert.equal(answer.headers["x-frame-options"], "DENY");
          assert.equal(answer.headers["cache-control"], "no-store");
        }
      },
      { runs: 2000, seconds: 20, minRuns: 50 },
    );
    // The cases reached past the checks too, not only refusals.
    t.diagnostic(`statuses: ${[...statuses].map(([s, n]) => `${s}×${n}`).join(", ")}`);
    assert.ok((statuses.get(200) ?? 0) > 0, "some cases were allowed through");

    // Still up, and still answering the right request.
    const page = await send(port, "GET", `/?token=${token}`, { host: `127.0.0.1:${port}` });
    assert.equal(page.status, 200);
  });
});
