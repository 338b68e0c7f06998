import { createRequire } from "node:module";
import { oneLine as cliOneLine } from "../cli/output.js";

/**
 * Control characters out, one line, bounded, well-formed UTF-16 (no half of
 * a surrogate pair left by the cut): text an MCP peer sent reaches logs and
 * messages only this way.
 */
export function oneLine(text: string, max = 200): string {
  return cliOneLine(text, max).toWellFormed();
}

let version: string | undefined;

/** This package's version (what smcp tells MCP peers in `initialize`). */
export function packageVersion(): string {
  version ??= (createRequire(import.meta.url)("../../package.json") as { version: string }).version;
  return version;
}
