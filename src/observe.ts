// `smcp/observe`: Prometheus metrics (prom-client) and structured JSON logs (pino) for a server or worker.

export type { MetricsEndpoint } from "./server/http-common.js";
export { createObservability, type Observability, type ObservabilityOptions } from "./server/observe.js";
export type { JobEvent, LimitReason, RequestEvent, ServerObserver } from "./server/observer.js";
export type { RegistryEvent, StaleReason } from "./server/registry-follow.js";
