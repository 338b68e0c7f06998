/**
 * Runs code under test in a worker thread, so that a hang (an endless loop
 * in a parser, a request that never completes) is reported as a failure
 * with its input instead of freezing the test runner: every call has a
 * deadline; past it the worker is terminated (which stops even a synchronous
 * loop) and started again, and the call rejects with {@link HangError}.
 */
import { Worker } from "node:worker_threads";

/** A call that did not finish within its deadline. */
export class HangError extends Error {
  override readonly name = "HangError";
  constructor(
    readonly method: string,
    readonly timeoutMs: number,
    /** Index of the item of a batch being worked on when time ran out (see `mark`). */
    readonly at: number,
  ) {
    super(`${method} did not finish within ${timeoutMs} ms (batch item ${at}): a hang`);
  }
}

/** The worker died (out of memory, an uncaught error) while a call was running. */
export class SandboxCrash extends Error {
  override readonly name = "SandboxCrash";
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

// tsx's loader must be registered inside the worker before the target module is imported.
const TSX_API = import.meta.resolve("tsx/esm/api");

/** A worker running one target module (see `child.ts`), restarted after a hang or a crash. */
export class Sandbox {
  readonly #target: URL;
  readonly #memoryMb: number;
  #worker!: Worker;
  #ready!: Promise<void>;
  #progress = new Int32Array(new SharedArrayBuffer(4));
  #pending = new Map<number, Pending>();
  #nextId = 0;
  /** Workers started so far (1 + restarts). */
  starts = 0;

  constructor(target: URL, options: { memoryMb?: number } = {}) {
    this.#target = target;
    this.#memoryMb = options.memoryMb ?? 768;
    this.#start();
  }

  #start(): void {
    this.starts++;
    this.#progress = new Int32Array(new SharedArrayBuffer(4));
    const boot = `import(${JSON.stringify(TSX_API)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(this.#target.href)}); });`;
    const worker = new Worker(boot, {
      eval: true,
      workerData: { progress: this.#progress.buffer },
      resourceLimits: { maxOldGenerationSizeMb: this.#memoryMb },
    });
    this.#worker = worker;
    this.#ready = new Promise((resolve, reject) => {
      const onReady = (message: { ready?: boolean }) => {
        if (message.ready) {
          worker.off("message", onReady);
          resolve();
        }
      };
      worker.on("message", onReady);
      worker.once("error", reject);
    });
    worker.on("message", (message: { id?: number; ok?: boolean; value?: unknown; error?: { name: string; message: string } }) => {
      if (message.id === undefined) return;
      const pending = this.#pending.get(message.id);
      if (!pending) return;
      this.#pending.delete(message.id);
      if (message.ok) pending.resolve(message.value);
      else pending.reject(Object.assign(new Error(message.error?.message), { name: message.error?.name ?? "Error" }));
    });
    const failAll = (error: Error) => {
      if (this.#worker !== worker) return;
      for (const pending of this.#pending.values()) pending.reject(error);
      this.#pending.clear();
    };
    worker.on("error", (error) => failAll(new SandboxCrash(`the sandbox worker failed: ${error.message}`)));
    worker.on("exit", (code) => failAll(new SandboxCrash(`the sandbox worker exited (${code})`)));
  }

  /** Waits until the worker has loaded its target. */
  ready(): Promise<void> {
    return this.#ready;
  }

  /**
   * Calls `method` in the worker with `arg` (structured clone). Rejects with
   * {@link HangError} when it takes longer than `timeoutMs`, after which the
   * worker is replaced by a fresh one.
   */
  async call<T>(method: string, arg: unknown, timeoutMs: number): Promise<T> {
    await this.#ready;
    const id = this.#nextId++;
    Atomics.store(this.#progress, 0, 0);
    const worker = this.#worker;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await new Promise<T>((resolve, reject) => {
        this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
        timer = setTimeout(() => {
          this.#pending.delete(id);
          const at = Atomics.load(this.#progress, 0);
          // The worker may be stuck in a synchronous loop: only terminate() stops it.
          void worker.terminate();
          this.#start();
          reject(new HangError(method, timeoutMs, at));
        }, timeoutMs);
        worker.postMessage({ id, method, arg });
      });
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops the worker. */
  async close(): Promise<void> {
    const worker = this.#worker;
    await this.#ready.catch(() => undefined);
    await worker.terminate();
  }
}
