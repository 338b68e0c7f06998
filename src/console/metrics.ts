import { readLimited } from "../util/stream.js";
import type { MetricsInfo, MetricsPoint } from "./api.js";

/** One sample line of the Prometheus text format: a metric name, its labels and its value. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

// name, optional {labels}, value; an optional timestamp after it is ignored.
const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?[ \t]+(\S+)/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?/gy;

/**
 * Parses the Prometheus text exposition format, minimally: sample lines
 * only (comments and types skipped), label values unescaped. A line it
 * cannot read is skipped rather than failing the scrape: the console shows
 * what it understands. Only the handful of smcp series the charts need are
 * read, so a whole library would be more than this needs.
 */
export function parsePrometheus(text: string): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const match = SAMPLE_LINE.exec(line);
    if (!match) continue;
    const [, name, labelText, valueText] = match as unknown as [string, string, string | undefined, string];
    const value = Number(valueText === "+Inf" ? Number.POSITIVE_INFINITY : valueText);
    if (Number.isNaN(value)) continue;
    const labels: Record<string, string> = Object.create(null);
    if (labelText !== undefined) {
      LABEL.lastIndex = 0;
      let read = 0;
      for (let m = LABEL.exec(labelText); m !== null; m = LABEL.exec(labelText)) {
        labels[m[1] as string] = (m[2] as string).replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
        read = LABEL.lastIndex;
      }
      if (read !== labelText.length) continue; // labels it cannot read: skip the line
    }
    out.push({ name, labels, value });
  }
  return out;
}

/** The parts of one scrape the charts use. */
export interface Scrape {
  at: number;
  /** smcp_requests_total summed over tools, and by code. */
  total: number;
  byCode: Record<string, number>;
  /** smcp_request_duration_seconds over tools other than poll_job: sum, count, and cumulative buckets by upper bound. */
  sum: number;
  count: number;
  buckets: Map<number, number>;
}

/** Codes that are not errors (SPEC §1 statuses). */
const OK_CODES = new Set(["ok", "accepted", "running", "done"]);

/**
 * Long polls are held open on purpose (up to `wait_ms`), and this console
 * holds some itself: counted in latency they would swamp every real call.
 */
const HELD_TOOLS = new Set(["poll_job"]);

/** Reads the smcp series of one scrape. */
export function summarise(samples: Sample[], at: number): Scrape {
  const scrape: Scrape = { at, total: 0, byCode: {}, sum: 0, count: 0, buckets: new Map() };
  for (const { name, labels, value } of samples) {
    if (name === "smcp_requests_total") {
      scrape.total += value;
      const code = labels.code ?? "unknown";
      scrape.byCode[code] = (scrape.byCode[code] ?? 0) + value;
      continue;
    }
    if (HELD_TOOLS.has(labels.tool ?? "")) continue;
    if (name === "smcp_request_duration_seconds_sum") scrape.sum += value;
    else if (name === "smcp_request_duration_seconds_count") scrape.count += value;
    else if (name === "smcp_request_duration_seconds_bucket") {
      const le = labels.le === "+Inf" ? Number.POSITIVE_INFINITY : Number(labels.le);
      if (!Number.isNaN(le)) scrape.buckets.set(le, (scrape.buckets.get(le) ?? 0) + value);
    }
  }
  return scrape;
}

/** Rates between two scrapes; a counter that went down (a server restart) counts from zero. */
export function pointBetween(before: Scrape, after: Scrape): MetricsPoint {
  const seconds = Math.max(0.001, (after.at - before.at) / 1000);
  const restarted = after.total < before.total || after.count < before.count;
  const base = restarted ? { total: 0, sum: 0, count: 0, buckets: new Map<number, number>() } : before;
  const count = after.count - base.count;
  const mean = count > 0 ? ((after.sum - base.sum) / count) * 1000 : null;
  let p95: number | null = null;
  if (count > 0) {
    // Cumulative buckets, smallest bound first: the first holding 95% of the interval's requests.
    for (const le of [...after.buckets.keys()].sort((a, b) => a - b)) {
      const within = (after.buckets.get(le) ?? 0) - (base.buckets.get(le) ?? 0);
      if (within >= 0.95 * count) {
        p95 = Number.isFinite(le) ? le * 1000 : null;
        break;
      }
    }
  }
  return { at_ms: after.at, rate: Math.max(0, (after.total - base.total) / seconds), mean_ms: mean, p95_ms: p95 };
}

/** How many points the charts keep (two minutes at the default interval). */
export const MAX_POINTS = 60;

/**
 * Scrapes a metrics URL now and then and keeps the last points. The
 * endpoint is the server's (unauthenticated, SPEC-external); the console
 * reads it from its own process so the page stays on its own origin.
 */
export class MetricsSampler {
  readonly url: string | null;
  #last: Scrape | undefined;
  #points: MetricsPoint[] = [];
  #available = false;
  #reason = "not read yet";
  /** The scrape under way: a second asker shares it, so points stay in time order and the server is read once. */
  #inFlight: Promise<MetricsInfo> | undefined;

  constructor(url: string | null) {
    this.url = url;
  }

  /** Scrapes once (bounded in size and time) and returns the new state. */
  sample(): Promise<MetricsInfo> {
    this.#inFlight ??= this.#scrape().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  async #scrape(): Promise<MetricsInfo> {
    if (this.url === null) return this.info();
    const now = Date.now();
    try {
      const response = await fetch(this.url, { signal: AbortSignal.timeout(2000), redirect: "error" });
      if (!response.ok) {
        void response.body?.cancel().catch(() => undefined);
        throw new Error(`HTTP ${response.status} (is the server run with --metrics?)`);
      }
      const body = await readLimited(response.body, 4 * 1024 * 1024, 2000);
      if (typeof body === "string") throw new Error(`the metrics answer was ${body === "timeout" ? "too slow" : "too large"}`);
      const scrape = summarise(parsePrometheus(Buffer.from(body).toString("utf8")), now);
      if (this.#last) {
        this.#points.push(pointBetween(this.#last, scrape));
        if (this.#points.length > MAX_POINTS) this.#points.splice(0, this.#points.length - MAX_POINTS);
      }
      this.#last = scrape;
      this.#available = true;
    } catch (error) {
      this.#available = false;
      const cause = (error as { cause?: { code?: unknown } }).cause?.code;
      this.#reason = typeof cause === "string" ? cause : error instanceof Error ? error.message : String(error);
    }
    return this.info();
  }

  /** The points so far, and the error counters of the last scrape. */
  info(): MetricsInfo {
    const errors: Record<string, number> = {};
    for (const [code, n] of Object.entries(this.#last?.byCode ?? {})) if (!OK_CODES.has(code) && n > 0) errors[code] = n;
    const info: MetricsInfo = {
      url: this.url,
      available: this.#available,
      points: [...this.#points],
      errors,
      total: this.#last?.total ?? 0,
    };
    if (!this.#available) info.reason = this.url === null ? "no metrics URL" : this.#reason;
    return info;
  }
}
