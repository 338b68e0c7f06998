// `smcp`: the protocol, the client, the transport-agnostic server and its
// tools, in-memory stores and the fetch handler. It loads no native code and
// no Redis client: SQLite, Redis, node:http serving and the MCP bridge are
// their own entry points (`smcp/sqlite`, `smcp/redis`, `smcp/http`,
// `smcp/stores`, `smcp/mcp`).

export type { CompiledClient, CompiledLimits } from "./auth/registry.js";
export { compileScopes, DEFAULT_SCOPES, type Scopes } from "./auth/scopes.js";
export { MemoryJobStore, type MemoryJobStoreOptions } from "./backends/memory/jobs.js";
export { MemoryNonceStore, type MemoryNonceStoreOptions } from "./backends/memory/nonces.js";
export type { OpenedStores, OpenStoresOptions } from "./backends/open.js";
export { freshDemoKeys, runDemo } from "./cli/demo-flow.js";
export {
  type BuiltEnvelope,
  type CallOptions,
  type ClientOptions,
  createClient,
  resultOf,
  SmcpClient,
  type ToolArgs,
  type ToolOutput,
  type ToolResult,
  type WaitOptions,
} from "./client/client.js";
export { type CallerOverrides, type CallerSettings, clientFromEnv, resolveCaller } from "./client/env.js";
export { endpointUrl, type HttpTransportOptions, httpTransport } from "./client/http.js";
export { inProcessTransport, type TraceCarrier, type Transport, type TransportAnswer } from "./client/transport.js";
export type { AccessOptions, LongPollLimits } from "./jobs/access.js";
export { ClaimingJobQueue, type ClaimingJobQueueOptions } from "./jobs/claiming-queue.js";
export { createJobEngine, type ErrorContext, type JobEngine, type JobEngineOptions } from "./jobs/engine.js";
export { type NonceStore, type NonceStoreStats, nonceStoreFill } from "./jobs/nonces.js";
export type { JobExecutor, JobQueue, JobQueueDeps, JobQueueFactory } from "./jobs/queue.js";
export { type AbortReason, DEFAULT_LEASE_MS, JobRunner, type JobRunnerOptions, type ToolEnvironment } from "./jobs/runner.js";
export type {
  ClientUsage,
  JobCounts,
  JobError,
  JobListFilter,
  JobOutcome,
  JobRecord,
  JobState,
  JobStore,
  JobStoreOptions,
  NewJob,
} from "./jobs/store.js";
export { CanonicalValueError, canonicalize, type JsonObject, type JsonValue } from "./protocol/canonical.js";
export {
  ERROR_CODES,
  type ErrorCode,
  httpStatusFor,
  isErrorCode,
  SmcpError,
  type SmcpErrorOptions,
  SmcpUsageError,
  ToolError,
  toSmcpError,
} from "./protocol/errors.js";
export { type IssueDetails, MAX_ISSUES, type WireIssue } from "./protocol/issues.js";
export {
  type CallerKeys,
  type ClientRecord,
  callerKeys,
  Keyring,
  type KeyringOptions,
} from "./protocol/keyring.js";
export {
  type Algorithm,
  ED25519_PUBLIC_PREFIX,
  ED25519_SECRET_PREFIX,
  type Ed25519Key,
  ed25519PublicKeyFlaw,
  generateEd25519,
  type HmacKey,
  jwkToKeyString,
  type Key,
  MIN_SECRET_BYTES,
  parseKey,
  publicKeyOf,
  type SecretInput,
  type SecretsInput,
  toKeys,
} from "./protocol/keys.js";
export {
  type Envelope,
  EnvelopeSchema,
  JsonObjectSchema,
  PROTOCOL_VERSION,
  RESPONSE_STATUSES,
  type ResponseMessage,
  ResponseSchema,
  type ResponseStatus,
} from "./protocol/messages.js";
export {
  JsonSyntaxError,
  type ParsedJson,
  type ParseLimits,
  type ParseOptions,
  parseJson,
  parseLossless,
} from "./protocol/parse.js";
export {
  hasCanonicalS,
  isSignatureFormat,
  isSmallOrderEncoding,
  type SignedMessage,
  signCanonical,
  signMessage,
  verifyCanonical,
} from "./protocol/sign.js";
export {
  createServer,
  DEFAULT_FRESHNESS_MS,
  DEFAULT_MAX_MESSAGE_BYTES,
  type HandleResult,
  MAX_ERROR_BYTES,
  type ServerOptions,
  SmcpServer,
} from "./server/core.js";
export { installProcessGuards, type ProcessGuardOptions, type StrayError } from "./server/guards.js";
export type { HttpOptions } from "./server/http-common.js";
export { createFetchHandler } from "./server/http-fetch.js";
export {
  ClientLimiter,
  type ClientLimits,
  DEFAULT_CLIENT_LIMITS,
  type JobQuotas,
  type LimitsOptions,
  memoryRateLimiter,
  type RateLimiter,
  type RateLimiterFactory,
} from "./server/limits.js";
export type { JobEvent, LimitReason, OverdueEvent, RequestEvent, ServerObserver } from "./server/observer.js";
export { createWorker, type SmcpWorker, type WorkerOptions, type WorkerStores } from "./server/worker.js";
export {
  type Awaitable,
  defineTool,
  describeTool,
  isTool,
  type JobAccess,
  type JobContext,
  type JobTool,
  type JobToolDefinition,
  type JobView,
  type ServerInfo,
  StatusReply,
  type SyncTool,
  type SyncToolDefinition,
  type Tool,
  type ToolContext,
  type ToolDescription,
} from "./tools/define.js";
export { batchSum, demoTools, startLongTask } from "./tools/demo.js";
export {
  cancelJob,
  listJobs,
  listTools,
  MAX_WAIT_MS,
  PLUMBING_TOOLS,
  pollJob,
  protocolTools,
  serverIdentity,
} from "./tools/protocol.js";
export { type RegisteredTool, ToolRegistry } from "./tools/registry.js";
export { DEFAULT_MAX_OVERDUE_RUNS, ToolRuns, type ToolRunsOptions } from "./tools/runs.js";
export { type ArgsCheck, ArgsValidator } from "./tools/validate.js";
