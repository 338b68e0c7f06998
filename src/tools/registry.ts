import { SmcpUsageError } from "../protocol/errors.js";
import { describeTool, type Tool, type ToolDescription } from "./define.js";
import { protocolTools } from "./protocol.js";
import { ArgsValidator } from "./validate.js";

/** A tool as the registry holds it: the definition, its published description and its argument check. */
export interface RegisteredTool {
  readonly tool: Tool;
  readonly description: ToolDescription;
  readonly args: ArgsValidator;
  /** One of the protocol's own tools (SPEC §4), which use the server's stores. */
  readonly protocol: boolean;
}

/** The tools a server offers, looked up by name through a `Map`. */
export class ToolRegistry {
  readonly #tools = new Map<string, RegisteredTool>();
  #descriptions: ToolDescription[] | undefined;

  constructor(tools: Iterable<Tool> = []) {
    for (const tool of tools) this.add(tool);
  }

  /** Adds a tool; a second tool with the same name is a usage error. */
  add(tool: Tool): void {
    if (this.#tools.has(tool.name)) throw new SmcpUsageError(`two tools are named '${tool.name}'; tool names must be unique`);
    const description = describeTool(tool);
    let args: ArgsValidator;
    try {
      args = new ArgsValidator(tool.input, description.input_schema, { authoritative: tool.jsonSchema?.input !== undefined });
    } catch (error) {
      // A tool made by another copy of smcp skipped this copy's checks in defineTool: say which tool.
      if (error instanceof SmcpUsageError) throw new SmcpUsageError(`tool '${tool.name}': ${error.message}`);
      throw error;
    }
    this.#tools.set(tool.name, { tool, description, args, protocol: (protocolTools as readonly Tool[]).includes(tool) });
    this.#descriptions = undefined;
  }

  /** The tool with this name, or undefined. */
  get(name: string): Tool | undefined {
    return this.#tools.get(name)?.tool;
  }

  /** The tool with its description and argument check, or undefined. */
  entry(name: string): RegisteredTool | undefined {
    return this.#tools.get(name);
  }

  /** All tools, in the order they were added. */
  list(): Tool[] {
    return [...this.#tools.values()].map((entry) => entry.tool);
  }

  /** Names of the job tools (what a worker with this registry can run). */
  jobToolNames(): string[] {
    return this.list()
      .filter((tool) => tool.kind === "job")
      .map((tool) => tool.name);
  }

  /** Descriptions with JSON Schemas, computed once. */
  describe(): ToolDescription[] {
    this.#descriptions ??= [...this.#tools.values()].map((entry) => entry.description);
    return this.#descriptions;
  }
}
