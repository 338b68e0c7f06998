import { SmcpUsageError } from "../protocol/errors.js";
import { parseFlags } from "./args.js";
import { newSecret } from "./config.js";
import type { CliIO } from "./io.js";

/** `smcp keygen --help`. */
export const KEYGEN_HELP = `usage: smcp keygen

Prints a new random secret (32 bytes, base64url) for --server-secret,
--client-secret or SMCP_CLIENTS.`;

/** `smcp keygen`. */
export async function keygenCommand(argv: string[], io: CliIO): Promise<number> {
  const flags = parseFlags("keygen", argv, {});
  if (flags.boolean("help")) {
    io.out(KEYGEN_HELP);
    return 0;
  }
  if (flags.positionals.length > 0)
    throw new SmcpUsageError(`unexpected argument '${flags.positionals[0]}' (see \`smcp keygen --help\`)`);
  io.out(newSecret());
  return 0;
}
