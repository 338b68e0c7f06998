import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { SmcpUsageError } from "../protocol/errors.js";
import { isTool, type Tool } from "../tools/define.js";

const TYPESCRIPT = /\.(ts|mts|cts|tsx)$/;

/**
 * Loads `--tools MODULE` files: ES modules whose exports are smcp tools
 * (`defineTool` values, or arrays of them). A `.ts` module is loaded
 * through tsx when it is installed. Paths are relative to `cwd`.
 */
export async function loadToolModules(specs: readonly string[], cwd: string = process.cwd()): Promise<Tool[]> {
  const tools: Tool[] = [];
  for (const spec of specs) {
    const path = isAbsolute(spec) ? spec : resolve(cwd, spec);
    const exports = await importModule(spec, path);
    const found = toolsIn(exports);
    if (found.length === 0) {
      throw new SmcpUsageError(`${spec} exports no smcp tools; export defineTool(...) values or arrays of them`);
    }
    tools.push(...found);
  }
  return tools;
}

async function importModule(spec: string, path: string): Promise<Record<string, unknown>> {
  const url = pathToFileURL(path).href;
  try {
    if (!TYPESCRIPT.test(path)) return (await import(url)) as Record<string, unknown>;
    let tsx: { tsImport(specifier: string, parent: string): Promise<unknown> };
    try {
      tsx = (await import("tsx/esm/api")) as typeof tsx;
    } catch {
      throw new SmcpUsageError(`${spec} is TypeScript: install tsx (npm install tsx) or build it to .js`);
    }
    return (await tsx.tsImport(url, import.meta.url)) as Record<string, unknown>;
  } catch (error) {
    if (error instanceof SmcpUsageError) throw error;
    const code = (error as { code?: string }).code;
    if (code === "ERR_MODULE_NOT_FOUND" && String((error as Error).message).includes(path)) {
      throw new SmcpUsageError(`cannot find tool module ${spec} (looked at ${path})`);
    }
    throw new SmcpUsageError(`cannot load tool module ${spec}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function toolsIn(exports: Record<string, unknown>): Tool[] {
  const tools: Tool[] = [];
  for (const value of Object.values(exports)) {
    if (isTool(value)) tools.push(value);
    else if (Array.isArray(value)) for (const item of value) if (isTool(item)) tools.push(item);
  }
  // `export default [a, b]` beside `export { a, b }`: each tool once.
  return [...new Set(tools)];
}
