import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { SmcpUsageError } from "../protocol/errors.js";
import { isTool, type Tool } from "../tools/define.js";

const TYPESCRIPT = /\.(ts|mts|cts|tsx)$/;

/**
 * Loads `--tools MODULE` files: ES modules whose exports are smcp tools
 * (`defineTool` values, or arrays of them), or CommonJS modules
 * (`module.exports = [tool, …]` or `{ tools }`). A `.ts` module is loaded
 * through tsx when it is installed. Paths are relative to `cwd`.
 */
export async function loadToolModules(specs: readonly string[], cwd: string = process.cwd()): Promise<Tool[]> {
  const tools: Tool[] = [];
  for (const spec of specs) {
    const path = isAbsolute(spec) ? spec : resolve(cwd, spec);
    const exports = await importModule(spec, path);
    const found = toolsIn(exports);
    if (found.length === 0) {
      throw new SmcpUsageError(
        `${spec} exports no smcp tools; export defineTool(...) values or arrays of them (CommonJS: module.exports = [tool, ...] or { tools })`,
      );
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
    const message = error instanceof Error ? error.message : String(error);
    // The usual cause in a new project: the module requires a package that is not installed next to it.
    const fix =
      code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND"
        ? " (install what it imports in the module's project, e.g. npm install smcp zod)"
        : code === "ERR_REQUIRE_ESM" || /Cannot use import statement outside a module/.test(message)
          ? ' (an ES module in a CommonJS project: rename it to .mjs, or set "type": "module" in its package.json)'
          : "";
    throw new SmcpUsageError(`cannot load tool module ${spec}: ${message}${fix}`);
  }
}

function toolsIn(exports: Record<string, unknown>): Tool[] {
  const tools: Tool[] = [];
  const take = (value: unknown) => {
    if (isTool(value)) tools.push(value);
    else if (Array.isArray(value)) for (const item of value) if (isTool(item)) tools.push(item);
  };
  for (const [name, value] of Object.entries(exports)) {
    take(value);
    // A CommonJS module arrives as `default`: `module.exports = { tools }` or `{ a, b }` is looked into once.
    if (name === "default" && typeof value === "object" && value !== null && !Array.isArray(value) && !isTool(value)) {
      for (const inner of Object.values(value)) take(inner);
    }
  }
  // `export default [a, b]` beside `export { a, b }`: each tool once.
  return [...new Set(tools)];
}
