import type { JsonObject, JsonValue } from "../protocol/canonical.js";
import { SmcpError } from "../protocol/errors.js";
import { isJsonObject } from "../protocol/messages.js";

/** Limits on a JSON value that came from an MCP peer. */
export interface OutsideJsonLimits {
  /** Deepest nesting (the value itself is depth 1). */
  maxDepth: number;
  /** Largest size, in UTF-16 units of its JSON text (about its bytes for ASCII). */
  maxChars: number;
}

/**
 * A copy of a value an MCP peer sent (already `JSON.parse`d by the SDK) that
 * an smcp answer can carry: lone surrogates become U+FFFD (a signed answer
 * holding one would not verify: SPEC §2 refuses them), and a value too deep,
 * too large or not JSON (an overflowed `1e400`) is `bad_output`. Keys keep
 * their order; `__proto__` stays an own key. Runs in time linear in the input.
 */
export function outsideJson(value: unknown, limits: OutsideJsonLimits, what = "the MCP result"): JsonValue {
  let chars = 0;
  const refuse = (why: string): never => {
    throw new SmcpError("bad_output", `${what} ${why}`);
  };
  const count = (n: number) => {
    chars += n;
    if (chars > limits.maxChars) refuse(`exceeds ${limits.maxChars} characters`);
  };
  const copy = (item: unknown, depth: number): JsonValue => {
    switch (typeof item) {
      case "string":
        count(item.length + 2);
        return item.toWellFormed();
      case "number":
        if (!Number.isFinite(item)) refuse("holds a number JSON cannot carry");
        count(24);
        return item;
      case "boolean":
        count(5);
        return item;
      case "object": {
        if (item === null) {
          count(4);
          return null;
        }
        if (depth >= limits.maxDepth) refuse(`is nested deeper than ${limits.maxDepth} levels`);
        count(2);
        if (Array.isArray(item)) return item.map((element) => copy(element, depth + 1));
        if (!isJsonObject(item)) return refuse("holds a value that is not JSON");
        const out: JsonObject = {};
        for (const [key, element] of Object.entries(item)) {
          count(key.length + 4);
          // defineProperty, not assignment: a `__proto__` key must stay data, not become the prototype.
          Object.defineProperty(out, key.toWellFormed(), {
            value: copy(element, depth + 1),
            enumerable: true,
            writable: true,
            configurable: true,
          });
        }
        return out;
      }
      default:
        return refuse("holds a value that is not JSON");
    }
  };
  return copy(value, 1);
}

/** {@link outsideJson} for a value that must be an object. */
export function outsideObject(value: unknown, limits: OutsideJsonLimits, what?: string): JsonObject {
  const copied = outsideJson(value, limits, what);
  if (!isJsonObject(copied)) throw new SmcpError("bad_output", `${what ?? "the MCP result"} is not a JSON object`);
  return copied;
}
