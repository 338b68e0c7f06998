import { execFileSync } from "node:child_process";
import { BENCH } from "./fixtures.js";
import { type RunningPeer, startPeer } from "./peer.js";

/** The smcp CLI the benches run: this worktree's build unless `--smcp PATH` names another (e.g. an older commit's). */
export const DEFAULT_SMCP = "dist/cli/main.js";

/** Options for {@link startSmcp}. */
export interface SmcpServeOptions {
  /** A store URL: memory, sqlite:PATH, redis://… */
  store: string;
  /** Path of the CLI's main.js. Default {@link DEFAULT_SMCP}. */
  bin?: string;
  /** More `serve` flags. */
  extra?: string[];
  /** The CPU (or list, "0,1") to pin the server to. Default 0. */
  cpu?: number | string;
  /** The keys: HMAC secrets (default), or Ed25519 (the server's private key, the client's public one). */
  keys?: "hmac" | "ed25519";
  /** More environment (e.g. `OTEL_*`). */
  env?: NodeJS.ProcessEnv | undefined;
  /** Node's own flags before the script (e.g. `--cpu-prof`). */
  node?: string[];
  /** Where its stderr (its logs) goes: a file in memory (default), or /dev/null. */
  stderr?: "file" | "null";
}

/** `smcp serve` arguments with the bench keys (server and client id `bench`), on a free port, ignoring any keyring file. */
export function smcpServeArgs(options: SmcpServeOptions): string[] {
  return [
    ...(options.node ?? []),
    options.bin ?? DEFAULT_SMCP,
    "serve",
    "--port",
    "0",
    "--store",
    options.store,
    "--server-id",
    "bench",
    "--server-secret",
    options.keys === "ed25519" ? BENCH.ed25519ServerSecret : BENCH.serverSecret,
    "--client",
    `bench=${options.keys === "ed25519" ? BENCH.ed25519ClientPublic : BENCH.clientSecret}`,
    "--config",
    "/nonexistent/keyring.json",
    ...(options.extra ?? []),
  ];
}

/** Starts `smcp serve` pinned to a CPU (default 0) and resolves once it listens. */
export function startSmcp(options: SmcpServeOptions): Promise<RunningPeer> {
  return startPeer(smcpServeArgs(options), options.cpu ?? 0, options.env, { stderr: options.stderr ?? "file" });
}

/** True when this build's `smcp serve --help` lists `flag` (e.g. `--metrics`), so older builds still run without it. */
export function serveHasFlag(flag: string, bin = DEFAULT_SMCP): boolean {
  try {
    const help = execFileSync(process.execPath, [bin, "serve", "--help"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
    return new RegExp(`(^|\\s)${flag}(\\s|=|$)`, "m").test(help);
  } catch {
    return false;
  }
}

/**
 * Flags every measured smcp server gets, when its build has them: the per-client rate limit (default 1000/s)
 * would cap the one bench client, and a log line per request is measured apart (bench/http.ts's observed peer).
 */
export function quietFlags(bin = DEFAULT_SMCP): string[] {
  return [
    ...(serveHasFlag("--client-rate", bin) ? ["--client-rate", "off"] : []),
    ...(serveHasFlag("--log-level", bin) ? ["--log-level", "warn"] : []),
  ];
}

/** A Prometheus text exposition's value for `name` (summed over label sets), or undefined when absent. */
export function metricValue(text: string, name: string): number | undefined {
  let total: number | undefined;
  for (const match of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})?\\s+(\\S+)`, "gm"))) {
    total = (total ?? 0) + Number(match[1]);
  }
  return total;
}

/** GET /metrics of a server; undefined when it does not serve one (an older build, or metrics off). */
export async function fetchMetrics(origin: string, timeoutMs = 5000): Promise<string | undefined> {
  try {
    const response = await fetch(`${origin}/metrics`, { signal: AbortSignal.timeout(timeoutMs) });
    return response.ok ? await response.text() : undefined;
  } catch {
    return undefined;
  }
}
