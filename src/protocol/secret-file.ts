import { readFileSync, statSync } from "node:fs";
import type { JsonValue } from "./canonical.js";
import { SmcpUsageError } from "./errors.js";
import { parseJson } from "./parse.js";

/**
 * Reads a JSON file that holds secrets (a keyring, a client registry):
 * refuses one that other users may read, and names the file when it is not
 * JSON. `fix` ends that message (what the user can do about it).
 */
export function readSecretJson(path: string, fix = ""): JsonValue {
  const mode = statSync(path).mode & 0o777;
  if (process.platform !== "win32" && (mode & 0o077) !== 0) {
    throw new SmcpUsageError(`${path} is readable by other users (mode ${mode.toString(8)}); run: chmod 600 ${path}`);
  }
  try {
    return parseJson(readFileSync(path));
  } catch (error) {
    throw new SmcpUsageError(`${path} is not valid JSON (${(error as Error).message})${fix}`);
  }
}
