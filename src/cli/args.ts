import { type ParseArgsConfig, parseArgs } from "node:util";
import { SmcpUsageError } from "../protocol/errors.js";
import type { CliIO } from "./io.js";

/** Flags of one command, read through typed getters. */
export class Flags {
  constructor(
    private readonly values: Record<string, unknown>,
    readonly positionals: string[],
  ) {}

  string(name: string): string | undefined {
    const v = this.values[name];
    return typeof v === "string" ? v : undefined;
  }

  boolean(name: string): boolean {
    return this.values[name] === true;
  }

  list(name: string): string[] {
    const v = this.values[name];
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
  }
}

/** Parses a command's flags strictly; an unknown or malformed flag is a usage error naming `smcp COMMAND --help`. */
export function parseFlags(command: string, argv: string[], options: NonNullable<ParseArgsConfig["options"]>): Flags {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { ...options, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
    });
    return new Flags(values, positionals);
  } catch (error) {
    const message = (error as Error).message.replace(/\. To specify a positional argument.*$/s, "");
    throw new SmcpUsageError(`${message} (see \`smcp ${command} --help\`)`);
  }
}

/** A command: its name, its `--help` text, its flags, and whether it takes positional arguments. */
export interface CommandSpec {
  name: string;
  help: string;
  options: NonNullable<ParseArgsConfig["options"]>;
  positionals?: boolean;
}

/**
 * Parses a command's arguments. With `--help` it prints the help and returns
 * undefined (the command then exits 0); an argument the command does not take
 * is a usage error.
 */
export function parseCommand(spec: CommandSpec, argv: string[], io: CliIO): Flags | undefined {
  const flags = parseFlags(spec.name, argv, spec.options);
  if (flags.boolean("help")) {
    io.out(spec.help);
    return undefined;
  }
  if (!spec.positionals && flags.positionals.length > 0) {
    throw new SmcpUsageError(`unexpected argument '${flags.positionals[0]}' (see \`smcp ${spec.name} --help\`)`);
  }
  return flags;
}
