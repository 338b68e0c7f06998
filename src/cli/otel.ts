import { SmcpUsageError } from "../protocol/errors.js";

/**
 * OpenTelemetry export for the long-running commands (`serve`, `worker`, `mcp`), from the
 * standard environment: on when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is
 * set and `OTEL_SDK_DISABLED` is not `true`. The SDK and the OTLP exporters are optional peer
 * dependencies, loaded only then (dynamic import): without them, and without the variables, the
 * library's spans stay no-ops. The NodeSDK reads the rest itself: `OTEL_EXPORTER_OTLP_PROTOCOL`
 * (`http/protobuf` default, `http/json`), `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER` and
 * `OTEL_TRACES_SAMPLER_ARG` (default `parentbased_always_on`), `OTEL_METRICS_EXPORTER`,
 * `OTEL_BSP_*`. Returns the shutdown (flushes what is buffered), or undefined when off.
 */
export async function startTelemetry(command: string, env: NodeJS.ProcessEnv): Promise<(() => Promise<void>) | undefined> {
  if (!(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)) return undefined;
  if (env.OTEL_SDK_DISABLED === "true") return undefined;
  let sdkNode: typeof import("@opentelemetry/sdk-node");
  try {
    sdkNode = await import("@opentelemetry/sdk-node");
  } catch {
    throw new SmcpUsageError(
      "OTEL_EXPORTER_OTLP_ENDPOINT is set but the OpenTelemetry SDK is not installed; npm install @opentelemetry/sdk-node (or unset the variable)",
    );
  }
  // The NodeSDK reads OTEL_SERVICE_NAME itself; name the command when it is not set.
  const sdk = new sdkNode.NodeSDK(env.OTEL_SERVICE_NAME ? {} : { serviceName: `smcp-${command}` });
  sdk.start();
  return () => sdk.shutdown().catch(() => undefined);
}

/** Runs a command with telemetry on when the environment asks for it; flushes before it returns. */
export async function withTelemetry(command: string, env: NodeJS.ProcessEnv, run: () => Promise<number>): Promise<number> {
  const shutdown = await startTelemetry(command, env);
  try {
    return await run();
  } finally {
    await shutdown?.();
  }
}
