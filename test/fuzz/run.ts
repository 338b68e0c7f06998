/**
 * How the fuzz properties run. Under `npm test` each property gets a short,
 * bounded run; `npm run fuzz` (FUZZ=1) runs the same properties far longer.
 *
 *   FUZZ=1           long mode: FUZZ_SECONDS=25 per property by default (22 properties: ~10 min), no run cap
 *   FUZZ_SECONDS=N   time budget of each property, in seconds
 *   FUZZ_RUNS=N      most cases per property
 *   FUZZ_SEED=S      replay with this seed (printed on failure) ...
 *                    (unset under `npm test`: each property's seed is derived from its test's
 *                    name, so CI replays exactly the cases a developer ran; `npm run fuzz`
 *                    draws fresh seeds)
 *   FUZZ_PATH=P      ... and this path: only the failing case runs, with its shrinking
 *
 * A failure prints fast-check's report and the line that replays it.
 */
import type { TestContext } from "node:test";
import fc from "fast-check";

/** True under `npm run fuzz`. */
export const LONG = process.env.FUZZ === "1";

function envNumber(name: string): number | undefined {
  const text = process.env[name];
  if (text === undefined || text === "") return undefined;
  const n = Number(text);
  if (!Number.isFinite(n)) throw new Error(`${name} must be a number, not '${text}'`);
  return n;
}

/** What one bounded run of a property gets under `npm test`. */
export interface Budget {
  /** Most cases. */
  runs: number;
  /** Most seconds (the run stops at whichever comes first). */
  seconds: number;
  /** Fewest cases that count as a run (default 5): a property cut off by time before this fails. */
  minRuns?: number;
}

/** A stable 32-bit seed from a test's name (FNV-1a), so `npm test` replays the same cases everywhere. */
export function seedOf(name: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) hash = Math.imul(hash ^ name.charCodeAt(i), 0x01000193);
  return hash | 0;
}

/** Totals of every property run in this process, for the summary line. */
export const totals = { properties: 0, cases: 0, ms: 0 };

/**
 * Runs `predicate` on values of `arbitrary` under the current settings,
 * reports how many cases ran in how long (a test diagnostic), and on failure
 * throws fast-check's report with the exact command that replays it. A case
 * still running when time is up is waited for (its outcome ignored), so the
 * next property never overlaps it.
 */
export async function runProperty<T>(
  t: TestContext,
  arbitrary: fc.Arbitrary<T>,
  predicate: (value: T) => unknown,
  budget: Budget,
): Promise<void> {
  const seconds = envNumber("FUZZ_SECONDS") ?? (LONG ? 25 : budget.seconds);
  const runs = envNumber("FUZZ_RUNS") ?? (LONG ? 2 ** 31 - 1 : budget.runs);
  // Under `npm test` the seed is the test's own; fresh seeds are `npm run fuzz`'s job.
  const seed = envNumber("FUZZ_SEED") ?? (LONG ? undefined : seedOf(t.fullName));
  const path = process.env.FUZZ_PATH;
  // The case running when time is up: fast-check stops waiting for it, this does not (a hang
  // inside it is reported by the sandbox's deadline, with the case's value).
  let inFlight: Promise<{ value: T; error: unknown } | undefined> = Promise.resolve(undefined);
  const property = fc.asyncProperty(arbitrary, async (value) => {
    const run = (async () => predicate(value))();
    inFlight = run.then(
      () => undefined,
      (error: unknown) => ({ value, error }),
    );
    await run;
  });
  const params: fc.Parameters<[T]> = {
    numRuns: runs,
    plugins: [fc.interruptAfterTimeLimit(seconds * 1000) as fc.Plugin<[T]>],
    ...(seed === undefined ? {} : { seed }),
    ...(path ? { path } : {}),
  };
  const started = performance.now();
  const details = await fc.check(property, params);
  const last = await inFlight;
  const ms = performance.now() - started;
  totals.properties++;
  totals.cases += details.numRuns;
  totals.ms += ms;
  t.diagnostic(`${details.numRuns} cases in ${(ms / 1000).toFixed(1)} s (seed ${details.seed})`);
  const replay = `node --import tsx --test --test-name-pattern=${JSON.stringify(t.name)} ${process.argv[1] ?? "test/fuzz-*.test.ts"}`;
  if (details.interrupted && last !== undefined && !(details.errorInstance instanceof Error)) {
    // Interrupted while a case was failing (typically a hang caught by the sandbox's deadline).
    const message = last.error instanceof Error ? last.error.message : String(last.error);
    const report = `The case running when time ran out failed.\nCounterexample: ${fc.stringify(last.value)}\nError: ${message}`;
    console.error(`${report}\nreplay: FUZZ_SEED=${details.seed} ${replay}`);
    throw new Error(`${report}\nreplay: FUZZ_SEED=${details.seed} ${replay}`);
  }
  const minRuns = Math.min(budget.minRuns ?? 5, runs);
  if (!details.failed && details.numRuns < minRuns && path === undefined) {
    throw new Error(
      `only ${details.numRuns} cases ran in ${seconds} s (at least ${minRuns} needed): the property tested too little; raise its time budget or make its cases cheaper`,
    );
  }
  if (details.failed) {
    const cause =
      details.errorInstance instanceof Error
        ? details.errorInstance.message
        : details.interrupted
          ? `interrupted after ${seconds} s before a case completed`
          : String(details.errorInstance);
    const report = `${fc.defaultReportMessage(details)}\nError: ${cause}`;
    const line = `replay: FUZZ_SEED=${details.seed} FUZZ_PATH=${JSON.stringify(details.counterexamplePath ?? "")} ${replay}`;
    console.error(`${report}\n${line}`);
    throw new Error(`${report}\n${line}`);
  }
}
