import type { JobError, JobRecord, JobState } from "../jobs/store.js";
import type { JsonObject } from "../protocol/canonical.js";
import { parseJson } from "../protocol/parse.js";

/** A job as the SQL stores (SQLite, PostgreSQL) keep it: one column per field, JSON as canonical text. */
export interface JobRow {
  id: string;
  client_id: string;
  tool: string;
  args: string;
  idempotency_key: string | null;
  state: JobState;
  progress: string | null;
  result: string | null;
  error: string | null;
  attempts: number;
  worker_id: string | null;
  lease_until: number | null;
  created_at: number;
  updated_at: number;
  expires_at: number | null;
  version: number;
  turn: number;
  bytes: number;
  /** The W3C traceparent of the call that started the job (SPEC §10); null when none. */
  trace: string | null;
}

const object = (text: string | null): JsonObject | null => (text === null ? null : (parseJson(text) as JsonObject));

/** A SQL store's row as a job record (JSON columns parsed losslessly, so integers past 2^53 stay exact). */
export function jobFromRow(row: JobRow): JobRecord {
  return {
    id: row.id,
    clientId: row.client_id,
    tool: row.tool,
    args: object(row.args) ?? {},
    idempotencyKey: row.idempotency_key,
    state: row.state,
    progress: object(row.progress),
    result: object(row.result),
    error: object(row.error) as JobError | null,
    attempts: row.attempts,
    workerId: row.worker_id,
    leaseUntil: row.lease_until,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    expiresAt: row.expires_at,
    version: row.version,
    turn: row.turn,
    bytes: row.bytes,
    trace: row.trace ?? null,
  };
}
