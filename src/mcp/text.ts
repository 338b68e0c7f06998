import { createRequire } from "node:module";

// Text an MCP peer sent reaches logs and messages only through `oneLine` (bounded, one line, well-formed).
export { oneLine } from "../client/present.js";

let version: string | undefined;

/** This package's version (what smcp tells MCP peers in `initialize`). */
export function packageVersion(): string {
  version ??= (createRequire(import.meta.url)("../../package.json") as { version: string }).version;
  return version;
}
