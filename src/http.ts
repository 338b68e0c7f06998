// `smcp/http`: serving an smcp server over node:http (and the fetch handler, for one import of both).

export { type HttpOptions, isJsonContentType } from "./server/http-common.js";
export { createFetchHandler } from "./server/http-fetch.js";
export { createHttpHandler, type NodeHttpHandler, type RunningServer, type ServeOptions, serveHttp } from "./server/http-node.js";
