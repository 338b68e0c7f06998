import { parseCommand } from "./args.js";
import { newSecret } from "./config.js";
import type { CliIO } from "./io.js";

/** `smcp keygen --help`. */
export const KEYGEN_HELP = `usage: smcp keygen

Prints a new random secret (32 bytes, base64url) for --server-secret,
--client-secret or SMCP_CLIENTS.`;

/** `smcp keygen`. */
export async function keygenCommand(argv: string[], io: CliIO): Promise<number> {
  const flags = parseCommand({ name: "keygen", help: KEYGEN_HELP, options: {} }, argv, io);
  if (!flags) return 0;
  io.out(newSecret());
  return 0;
}
