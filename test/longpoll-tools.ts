// Job tools for `smcp serve --tools` / `smcp worker --tools` in the long-poll
// process tests: a job another process ends by creating a file.
import { existsSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { defineTool } from "smcp";
import { z } from "zod";

/** `file_gate`: ends (with no progress) once the file at `path` exists. */
export const fileGate = defineTool({
  kind: "job",
  name: "file_gate",
  description: "Ends once the file at `path` exists; never reports progress.",
  input: z.strictObject({ path: z.string().min(1) }),
  output: z.strictObject({ opened: z.literal(true) }),
  handler: async ({ path }, ctx) => {
    // The test's gate: the handler looks for the file, the test never waits on time.
    while (!existsSync(path)) await sleep(5, undefined, { signal: ctx.signal });
    return { opened: true as const };
  },
});
