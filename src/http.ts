// `smcp/http`: serving an smcp server over node:http (and the fetch handler, for one import of both), and
// calling one from Node over undici.

export { undiciTransport } from "./client/undici.js";
export {
  DEFAULT_BODY_GRACE_MS,
  DEFAULT_BODY_TIMEOUT_MS,
  DEFAULT_HEADERS_TIMEOUT_MS,
  DEFAULT_KEEP_ALIVE_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_IN_FLIGHT,
  DEFAULT_MAX_PENDING_PER_ADDRESS,
  DEFAULT_MIN_BODY_RATE,
  type HttpOptions,
  isJsonContentType,
} from "./server/http-common.js";
export { createFetchHandler } from "./server/http-fetch.js";
export {
  createHttpHandler,
  type HttpLoad,
  type NodeHttpHandler,
  type RunningServer,
  type ServeOptions,
  serveHttp,
} from "./server/http-node.js";
