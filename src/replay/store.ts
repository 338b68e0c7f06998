/**
 * Remembers `(client_id, nonce)` pairs for as long as an envelope carrying
 * them could still be fresh. Implementations must be atomic: of many
 * concurrent reservations of one pair, exactly one succeeds.
 */
export interface NonceStore {
  /**
   * Reserves the pair until `expiresAt` (ms). True when it was free; false
   * when it was already used (a replay). Throws when the store is
   * unreachable: the server then fails closed with `unavailable`.
   */
  reserve(clientId: string, nonce: string, expiresAt: number): Promise<boolean>;
  close(): Promise<void>;
}

/** One string key for a pair, unambiguous whatever the ids contain. */
export function nonceKey(clientId: string, nonce: string): string {
  return `${clientId.length}:${clientId}:${nonce}`;
}
