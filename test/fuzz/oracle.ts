/**
 * Python as the oracle of canonical form: one long-lived `python3
 * test/fuzz/oracle.py` per test file, asked in batches over a line protocol
 * (see oracle.py). Answers come back in order.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** A JSON value tagged with the Python type it stands for (see oracle.py). */
export type Model =
  | ["n"]
  | ["b", boolean]
  | ["i", string]
  | ["f", string]
  | ["s", string]
  | ["a", Model[]]
  | ["o", [string, Model][]];

/** Python's verdict on one text: its canonical form, or why it is refused. */
export type Verdict = ["ok", string] | ["error", string];

const SCRIPT = fileURLToPath(new URL("./oracle.py", import.meta.url));

/** The Python oracle process. */
export class PythonOracle {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #waiting: { resolve(value: unknown): void; reject(error: Error): void }[] = [];
  #stderr = "";

  constructor() {
    this.#child = spawn("python3", [SCRIPT], { stdio: ["pipe", "pipe", "pipe"] });
    this.#child.stderr.on("data", (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString()).slice(-4000);
    });
    createInterface({ input: this.#child.stdout }).on("line", (line) => {
      const next = this.#waiting.shift();
      if (!next) return;
      const answer = JSON.parse(line) as { ok?: unknown; error?: string };
      if (answer.error !== undefined) next.reject(new Error(`oracle.py: ${answer.error}`));
      else next.resolve(answer.ok);
    });
    this.#child.on("exit", (code) => {
      for (const next of this.#waiting.splice(0)) next.reject(new Error(`oracle.py exited (${code}): ${this.#stderr}`));
    });
  }

  #ask<T>(request: object): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#waiting.push({ resolve: resolve as (value: unknown) => void, reject });
      // JSON.stringify escapes lone surrogates, so every text arrives in Python as it is in JS.
      this.#child.stdin.write(`${JSON.stringify(request)}\n`);
    });
  }

  /** Python's verdict on each text (json.loads plus the limits of SPEC §2). */
  parse(texts: string[]): Promise<Verdict[]> {
    return this.#ask({ op: "parse", texts });
  }

  /** Python's canonical text of each model. */
  dump(models: Model[]): Promise<string[]> {
    return this.#ask({ op: "dump", models });
  }

  /** Ends the process. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.#child.exitCode !== null) return resolve();
      this.#child.once("exit", () => resolve());
      this.#child.stdin.end();
    });
  }
}
