import { SmcpUsageError } from "../protocol/errors.js";
import { generateEd25519 } from "../protocol/keys.js";
import { parseCommand } from "./args.js";
import { newSecret } from "./config.js";
import type { CliIO } from "./io.js";

/** `smcp keygen --help`. */
export const KEYGEN_HELP = `usage: smcp keygen [--alg hmac|ed25519] [--json]

Prints a new random key.

  (no --alg), --alg hmac   an HMAC secret (32 bytes, base64url) for
                           --server-secret, --client-secret or SMCP_CLIENTS
  --alg ed25519            an Ed25519 key pair, on two lines:
                             secret: ed25519-secret:…  stays with its owner
                                                       (--server-secret, --client-secret)
                             public: ed25519:…         goes to the other side
                                                       (--client ID=ed25519:…, --server-key)
  --json                   one line of JSON: {"alg":"ed25519","secret":"…","public":"…"}
                           ({"alg":"hmac-sha256","secret":"…"} for an HMAC secret)`;

/** `smcp keygen [--alg hmac|ed25519] [--json]`. */
export async function keygenCommand(argv: string[], io: CliIO): Promise<number> {
  const flags = parseCommand(
    { name: "keygen", help: KEYGEN_HELP, options: { alg: { type: "string" }, json: { type: "boolean" } } },
    argv,
    io,
  );
  if (!flags) return 0;
  const alg = flags.string("alg") ?? "hmac";
  const json = flags.boolean("json");
  if (alg === "hmac") {
    const secret = newSecret();
    io.out(json ? JSON.stringify({ alg: "hmac-sha256", secret }) : secret);
    return 0;
  }
  if (alg !== "ed25519") throw new SmcpUsageError("--alg must be hmac or ed25519");
  const pair = generateEd25519();
  if (json) io.out(JSON.stringify({ alg: "ed25519", secret: pair.secret, public: pair.public }));
  else {
    io.out(`secret: ${pair.secret}`);
    io.out(`public: ${pair.public}`);
  }
  return 0;
}
