import { once } from "node:events";
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";

/** Options for {@link startMaintenance}. */
export interface MaintenanceOptions {
  /** How often the WAL is copied back into the database file, ms. */
  checkpointEveryMs: number;
  /** `DELETE` of expired rows, with two parameters: the time, and the most rows in one transaction. */
  sweepSql: string;
  /** Rows deleted per transaction (the thread yields between them). */
  sweepBatch: number;
  /** After each checkpoint round: WAL frames, and how many of them are now in the database file. */
  onCheckpoint(result: { log: number; checkpointed: number }): void;
  /** Called once if the thread fails (the caller then does the work on its own connection again). */
  onError(error: unknown): void;
}

/** A running maintenance thread. */
export interface Maintenance {
  /** Deletes the rows expired at `now` (ms), in batches, in the thread. */
  sweep(now: number): void;
  /** False once the thread has failed. */
  readonly running: boolean;
  /** Closes its connection and ends the thread. */
  stop(): Promise<void>;
}

// Plain CommonJS run by the worker (eval), so it needs no loader and no build step of its own.
const THREAD = `
const { workerData, parentPort } = require("node:worker_threads");
const Database = require(workerData.driver);
// Waiting for the write lock here (another connection's commit) blocks only this thread.
const db = new Database(workerData.path, { fileMustExist: true, timeout: 5000 });
const sweep = db.prepare(workerData.sweepSql);
let sweepAt = 0;
let sweeping = false;
function sweepBatch() {
  let deleted = 0;
  try {
    if (db.open) deleted = sweep.run(sweepAt, workerData.sweepBatch).changes;
  } catch {}
  // A full batch: more are due, after whatever else this thread has to do.
  if (deleted === workerData.sweepBatch) setImmediate(sweepBatch);
  else sweeping = false;
}
const timer = setInterval(() => {
  try {
    // The bulk, then what was committed during the pass before, until that is little: the caller
    // then finishes with a short pass of its own.
    let last = db.pragma("wal_checkpoint(PASSIVE)")[0];
    if (last.log === 0) return;
    for (let pass = 0; pass < 4; pass++) {
      const next = db.pragma("wal_checkpoint(PASSIVE)")[0];
      const added = next.log - last.checkpointed;
      last = next;
      if (added <= 256) break;
    }
    parentPort.postMessage(last);
  } catch {}
}, workerData.checkpointEveryMs);
parentPort.on("message", (message) => {
  if (message.sweep !== undefined) {
    sweepAt = Math.max(sweepAt, message.sweep);
    if (!sweeping) {
      sweeping = true;
      setImmediate(sweepBatch);
    }
    return;
  }
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

/**
 * The SQLite replay cache's upkeep, in a thread of its own with its own
 * connection, so none of it runs on the event loop:
 *
 * - The sweep: expired rows deleted in batches in order of expiry (each
 *   batch costs about as much as the inserts it undoes).
 * - WAL checkpoints (PASSIVE: they never wait for, nor block, readers and
 *   writers): the copy of the WAL into the database file and its fsyncs,
 *   tens of ms for a busy cache on this project's machine, which SQLite
 *   otherwise runs inside the commit that crosses `wal_autocheckpoint`. A
 *   checkpoint racing commits never completes, and only a complete one lets
 *   the WAL start over: after each round `onCheckpoint` tells the caller,
 *   who copies the short remainder between its own commits.
 */
export function startMaintenance(path: string, options: MaintenanceOptions): Maintenance {
  const driver = createRequire(import.meta.url).resolve("better-sqlite3");
  const worker = new Worker(THREAD, {
    eval: true,
    execArgv: [],
    workerData: {
      path,
      driver,
      checkpointEveryMs: options.checkpointEveryMs,
      sweepSql: options.sweepSql,
      sweepBatch: options.sweepBatch,
    },
  });
  worker.on("message", (result: { log: number; checkpointed: number }) => options.onCheckpoint(result));
  let running = true;
  const failed = (error: unknown) => {
    if (!running) return;
    running = false;
    options.onError(error);
  };
  worker.once("error", failed);
  worker.once("exit", () => failed(new Error("the SQLite maintenance thread exited")));
  const exited = once(worker, "exit").catch(() => undefined);
  // After the listeners (a 'message' listener refs the worker's port): a store left open never keeps the process alive.
  worker.unref();
  return {
    sweep(now) {
      if (running) worker.postMessage({ sweep: now });
    },
    get running() {
      return running;
    },
    async stop() {
      // Held until it has exited, so a caller awaiting stop() keeps the process alive meanwhile.
      worker.ref();
      if (running) worker.postMessage({ stop: true });
      running = false;
      await exited;
    },
  };
}
