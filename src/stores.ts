// `smcp/stores`: open the stores a store URL names (memory, sqlite:PATH, redis://…, postgres://…), loading only that backend.

export { type OpenedStores, type OpenStoresOptions, openStores } from "./backends/open.js";
export { redactUrl } from "./util/redact.js";
