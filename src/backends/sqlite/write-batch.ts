import type { Database, Transaction } from "better-sqlite3";
import { TurnBatcher } from "../../jobs/reserve-batch.js";

interface PendingWrite {
  run: () => unknown;
  resolve(value: unknown): void;
  reject(error: unknown): void;
  ok: boolean;
  value: unknown;
}

/**
 * Group commit for one SQLite connection: the writes asked for in one
 * event-loop turn run in one IMMEDIATE transaction, so a file opened with
 * `synchronous = FULL` pays one commit (one fsync) per turn, not one per
 * write. Each write runs in its own savepoint: one that throws rolls back
 * alone and rejects only its caller. No write is answered before the commit
 * that holds it; a failed commit (or a failure that ends the transaction:
 * I/O, a full disk, the write lock not had within the busy timeout) rejects
 * every write of the batch and keeps none.
 */
export class SqliteWriteBatch {
  readonly #turns: TurnBatcher<PendingWrite>;

  constructor(db: Database, maxGroup = 256) {
    // Called inside the batch's transaction, a transaction function is a savepoint (better-sqlite3).
    const savepoint = db.transaction((write: PendingWrite) => write.run());
    const commit: Transaction<(batch: PendingWrite[]) => void> = db.transaction((batch: PendingWrite[]) => {
      for (const write of batch) {
        try {
          write.value = savepoint(write);
          write.ok = true;
        } catch (error) {
          // Some failures (I/O, a full disk) make SQLite roll back the whole transaction, not the savepoint:
          // the writes after would then run (and commit) on their own. Fail the whole batch instead.
          if (!db.inTransaction) throw error;
          write.value = error;
        }
      }
    });
    this.#turns = new TurnBatcher((batch) => {
      try {
        // IMMEDIATE: the write lock first, so processes sharing the file serialise whole batches.
        commit.immediate(batch);
      } catch (error) {
        // The commit failed (busy past the timeout, disk full, closed): nothing of the batch holds.
        for (const write of batch) write.reject(error);
        return;
      }
      for (const write of batch) {
        if (write.ok) write.resolve(write.value);
        else write.reject(write.value);
      }
    }, maxGroup);
  }

  /** Runs `op` (synchronous statements only) in this turn's transaction; resolves with its value once committed. */
  run<T>(op: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#turns.add({ run: op, resolve: resolve as (value: unknown) => void, reject, ok: false, value: undefined });
    });
  }

  /** Commits every waiting write now (a store closing answers what it already took). */
  drain(): void {
    this.#turns.drain();
  }
}
