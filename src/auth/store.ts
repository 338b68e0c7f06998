import { SmcpError } from "../protocol/errors.js";
import { parseJson } from "../protocol/parse.js";
import { emptyRegistry, parseRegistry, type RegistryDocument, toJson } from "./registry.js";

/**
 * Where a store keeps the client registry, so that every replica reads the
 * same one (issue 20): the document as text and a version counter bumped by
 * every write. Each backend (`backends/*\/registry.ts`) implements it; the
 * document's meaning lives here, not in the backends.
 */
export interface RegistryStorage {
  /** The version counter: 0 before the first write. Cheap: replicas call it every 250 ms. */
  version(): Promise<number>;
  /** The document's text and its version (text undefined before the first write). */
  read(): Promise<{ version: number; text: string | undefined }>;
  /** Writes the text if the version is still `expected` (compare-and-set); false when another write came first. */
  write(expected: number, text: string): Promise<boolean>;
  /** Lets go of the connection. */
  close(): Promise<void>;
}

/** The registry a store holds, checked against the schema, with its version. */
export async function readStoredRegistry(
  storage: RegistryStorage,
  source: string,
): Promise<{ version: number; document: RegistryDocument }> {
  const { version, text } = await storage.read();
  if (text === undefined) return { version, document: emptyRegistry() };
  return { version, document: parseRegistry(parseJson(text), source) };
}

/**
 * Changes the stored registry with compare-and-set: reads it, applies
 * `change`, writes it only if nobody wrote in between (else starts over, a
 * few times). The change is checked against the schema before it is written.
 */
export async function updateStoredRegistry(
  storage: RegistryStorage,
  source: string,
  change: (document: RegistryDocument) => RegistryDocument,
): Promise<{ version: number; document: RegistryDocument }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const { version, document } = await readStoredRegistry(storage, source);
    const next = parseRegistry(JSON.parse(JSON.stringify(change(document))), source);
    if (await storage.write(version, toJson(next))) return { version: version + 1, document: next };
  }
  throw new SmcpError("unavailable", "the stored client registry kept changing under this write; retry");
}
