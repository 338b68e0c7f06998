import { SmcpUsageError } from "../protocol/errors.js";
import { describeTool, type Tool, type ToolDescription } from "./define.js";

/** The tools a server offers, looked up by name through a `Map`. */
export class ToolRegistry {
  readonly #tools = new Map<string, Tool>();
  #descriptions: ToolDescription[] | undefined;

  constructor(tools: Iterable<Tool> = []) {
    for (const tool of tools) this.add(tool);
  }

  /** Adds a tool; a second tool with the same name is a usage error. */
  add(tool: Tool): void {
    if (this.#tools.has(tool.name)) throw new SmcpUsageError(`two tools are named '${tool.name}'; tool names must be unique`);
    this.#tools.set(tool.name, tool);
    this.#descriptions = undefined;
  }

  /** The tool with this name, or undefined. */
  get(name: string): Tool | undefined {
    return this.#tools.get(name);
  }

  /** All tools, in the order they were added. */
  list(): Tool[] {
    return [...this.#tools.values()];
  }

  /** Descriptions with JSON Schemas, computed once. */
  describe(): ToolDescription[] {
    this.#descriptions ??= this.list().map(describeTool);
    return this.#descriptions;
  }
}
