// `smcp/mcp`: smcp and MCP, both ways, on the official MCP SDK. Its own entry
// point, so the `smcp` main entry never loads the SDK.
//
// - createMcpBridge: an MCP server that forwards to a remote smcp server (what `smcp mcp` runs on stdio).
// - mcpUpstreamTools: MCP servers' tools as signed smcp tools (what `smcp serve --mcp-upstream` offers).

export { createMcpBridge, type McpBridgeOptions } from "./mcp/bridge.js";
export { type McpGateway, type McpGatewayOptions, mcpUpstreamTools } from "./mcp/gateway.js";
export { MCP_RESULT_MARK } from "./mcp/result.js";
export {
  McpUpstream,
  type McpUpstreamOptions,
  parseUpstreamSpec,
  type UpstreamCallOptions,
  type UpstreamSpec,
  type UpstreamState,
} from "./mcp/upstream.js";
