import { MemoryJobStore } from "../jobs/memory.js";
import type { JobStore } from "../jobs/store.js";
import { SmcpUsageError } from "../protocol/errors.js";
import { MemoryNonceStore } from "../replay/memory.js";
import type { NonceStore } from "../replay/store.js";
import type { ServerOptions } from "./core.js";

/** The stores behind a server, opened from a store URL. */
export interface OpenedStores {
  jobStore: JobStore;
  nonceStore: NonceStore;
  /** How jobs are executed, when not in this process alone. */
  jobQueue?: ServerOptions["jobQueue"];
  /** The URL with any password removed, for logs. */
  label: string;
}

/** Options for {@link openStores}. */
export interface OpenStoresOptions {
  /** Retention of finished jobs, ms. */
  retentionMs?: number;
}

/** Opens the stores named by a URL: `memory` (more kinds arrive with the store issue). */
export async function openStores(url: string, options: OpenStoresOptions = {}): Promise<OpenedStores> {
  if (url === "memory") {
    return {
      jobStore: new MemoryJobStore(options.retentionMs === undefined ? {} : { retentionMs: options.retentionMs }),
      nonceStore: new MemoryNonceStore(),
      label: "memory",
    };
  }
  throw new SmcpUsageError(`store '${redactUrl(url)}' is not supported; use --store memory`);
}

/** A URL with its password replaced, safe for logs and errors. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):([^@/]*)@/, "//$1:***@");
}
