/**
 * A static bound on what validating against a JSON Schema can cost, computed
 * before ajv compiles a schema smcp did not write (an MCP upstream's, a tool
 * module's own JSON Schema). Size and depth caps do not bound validation: a
 * 2 KB schema whose 30 `$defs` each reference the next one twice makes ajv
 * call 2^30 functions per validated value. This walks the schema once,
 * resolving local `$ref`s, and bounds the number of schema-node
 * applications per instance node:
 *
 * - same-instance edges (`allOf`, `anyOf`, `oneOf`, `not`, `if`/`then`/`else`,
 *   `$ref`, `dependentSchemas`, `dependencies`) apply more schema nodes to the
 *   same value: the expansion of a node is 1 plus the sum of its children's
 *   (memoised); a cycle made only of such edges never ends and is refused;
 * - instance-consuming edges (`properties`, `patternProperties`,
 *   `additionalProperties`, `propertyNames`, `unevaluatedProperties`,
 *   `items`, `prefixItems`, `additionalItems`, `contains`,
 *   `unevaluatedItems`) apply to the value's children: level by level (up to
 *   the nesting cap), the multiset of nodes that may apply to one child is
 *   the element-wise max over the child's possible names or indices, so a
 *   binary tree (`left`/`right` both referencing the root) stays linear while
 *   `anyOf: [{items: A}, {items: A}]` recursing into `A` doubles per level.
 *
 * Total applications ≤ bound × instance nodes (a property's key and value
 * count as one node). A schema whose bound exceeds the limit is refused.
 */

/**
 * The default limit on schema-node applications per instance node (see
 * {@link schemaCost}). Real tool schemas come far below it (server-everything's
 * at most 1, smcp's own at most 4: `poll_job`'s output); the finding's schema
 * (each level referencing the next twice) passes it from 5 levels up.
 */
export const MAX_SCHEMA_COST = 64;

/**
 * Most schema-node evaluations one call's arguments may cost: the bound times
 * the values a message of that size can hold (about one per two bytes). At
 * roughly 50 ns a step this keeps one validation near 50 ms, so an accepted
 * schema built to sit just under {@link MAX_SCHEMA_COST} can't be paired with
 * 1 MiB of arguments to stall everyone else. A schema of bound 1 takes any
 * message up to the size cap; bound 4 up to 512 KiB; bound 64 up to 32 KiB.
 */
export const MAX_VALIDATION_STEPS = 1_000_000;

/** Deepest instance nesting analysed: SPEC §2's cap on a message's nesting. */
export const MAX_INSTANCE_DEPTH = 64;

/** Most schema nodes analysed: far above a 64 KB schema's, so the analysis itself stays bounded. */
const MAX_NODES = 50_000;

/** Most distinct multisets of schema nodes followed per nesting level before they are merged. */
const MAX_VARIANTS = 1024;

/** Keywords that do not validate: a node with only these and `$ref` is the node it references. */
const ANNOTATIONS = new Set([
  "$ref",
  "$comment",
  "title",
  "description",
  "default",
  "examples",
  "deprecated",
  "readOnly",
  "writeOnly",
  "$schema",
  "$defs",
  "definitions",
]);

/** Most steps of the analysis's own merging (a few milliseconds' worth). */
const MAX_OPS = 2_000_000;

/** Longest array `uniqueItems` may compare pairwise (ajv's quadratic path): 64² / 2 deep comparisons. */
export const MAX_PAIRWISE_UNIQUE = 64;

/** What {@link schemaCost} found. */
export type SchemaCostResult = { ok: true; bound: number } | { ok: false; reason: string };

type Node = object | boolean;
/** Node index → multiplicity. */
type Vec = Map<number, number>;
/** The schema nodes one child value may receive: by its slot (a property name or array index), else `others`. */
interface Consumed {
  readonly named: Map<string, Vec>;
  readonly others: Vec;
}

class Refused extends Error {}

const SAME_LIST = ["allOf", "anyOf", "oneOf"];
const SAME_ONE = ["not", "if", "then", "else"];
const SAME_MAP = ["dependentSchemas", "dependencies"];
// Applied to every child of an object or array, whatever its name or index.
const EVERY_CHILD = ["patternProperties", "propertyNames", "unevaluatedProperties", "contains", "unevaluatedItems"];

/**
 * Bounds the schema-node applications one instance node can cost under
 * `schema` (a JSON Schema, draft 2020-12 or draft-07 keywords), refusing it
 * when the bound exceeds `limit` (default {@link MAX_SCHEMA_COST}), when a
 * `$ref` is not local (`#…`) or does not resolve, when same-instance edges
 * form a cycle, or when `uniqueItems` would compare long arrays pairwise.
 * Never throws; runs in time about linear in the schema's size.
 */
export function schemaCost(schema: unknown, options: { limit?: number } = {}): SchemaCostResult {
  const limit = options.limit ?? MAX_SCHEMA_COST;
  try {
    return { ok: true, bound: new Analysis(schema, limit).bound() };
  } catch (error) {
    if (error instanceof Refused) return { ok: false, reason: error.message };
    if (error instanceof RangeError) return { ok: false, reason: "it is nested too deeply to analyse" };
    throw error;
  }
}

class Analysis {
  readonly #root: unknown;
  // Saturating counts: anything past the cap is refused, so exact huge numbers are never needed.
  readonly #cap: number;
  readonly #limit: number;
  readonly #ids = new Map<Node, number>();
  readonly #nodes: Node[] = [];
  /** The schema resource each object node sits in (nearest `$id`, else the document): its `#…` refs resolve there. */
  readonly #resource = new Map<object, object>();
  readonly #expansion = new Map<number, number>();
  readonly #consumed = new Map<number, Consumed>();
  readonly #visiting = new Set<number>();
  readonly #same = new Map<number, Node[]>();
  /** Ids that stand for a chain of `hops` pure `$ref` nodes ending at `target`. */
  readonly #aliases = new Map<number, { target: number; hops: number }>();
  readonly #aliasIds = new Map<string, number>();
  #ops = 0;

  constructor(root: unknown, limit: number) {
    this.#root = root;
    this.#limit = limit;
    this.#cap = limit + 1;
  }

  bound(): number {
    if (!isNode(this.#root)) throw new Refused("it is not a JSON Schema (an object or a boolean)");
    if (typeof this.#root === "object") this.#index(this.#root, this.#root);
    // The multisets of schema nodes that may apply to one value at this nesting level, each kept apart:
    // merged into one, the `next` and `items` branches of a linked list would add up level after level.
    let level: Vec[] = [new Map([[this.#key(this.#root), 1]])];
    let worst = 0;
    for (let depth = 0; depth < MAX_INSTANCE_DEPTH && level.length > 0; depth++) {
      for (const vec of level) worst = Math.max(worst, this.#vecWork(vec));
      // Checked before the children are worked out: a multiset within the limit holds at most `limit` nodes.
      this.#within(worst, depth);
      const next = new Map<string, Vec>();
      for (const vec of level) {
        const children: Consumed = { named: new Map(), others: new Map() };
        for (const [id, count] of vec) this.#addConsumed(children, this.#consume(id), count);
        for (const child of [children.others, ...children.named.values()]) {
          if (child.size === 0) continue;
          this.#spend(child.size);
          next.set(vecKey(child), child);
        }
      }
      level = [...next.values()];
      // Too many distinct multisets: their element-wise max bounds each of them (looser, still sound).
      // Those without children (a leaf's: already counted) are dropped first, so a wide object stays exact.
      if (level.length > MAX_VARIANTS) {
        for (const vec of level) worst = Math.max(worst, this.#vecWork(vec));
        this.#within(worst, depth + 1);
        level = level.filter((vec) => this.#hasChildren(vec));
        if (level.length > MAX_VARIANTS) level = [level.reduce(maxVec)];
      }
    }
    return worst;
  }

  #within(work: number, depth: number): void {
    if (work > this.#limit) {
      throw new Refused(
        `validating one value against it may apply more than ${this.#limit} schema nodes (at nesting level ${depth}); its $refs and combinators multiply`,
      );
    }
  }

  /** Schema-node applications on one value that this multiset applies to. */
  #vecWork(vec: Vec): number {
    let work = 0;
    for (const [id, count] of vec) work = this.#sat(work + this.#sat(count * this.#expand(id)));
    return work;
  }

  #hasChildren(vec: Vec): boolean {
    for (const id of vec.keys()) {
      const consumed = this.#consume(id);
      if (consumed.others.size > 0 || consumed.named.size > 0) return true;
    }
    return false;
  }

  /** `into += times × from`: a child named in only one of them takes the other's `others`. */
  #addConsumed(into: Consumed, from: Consumed, times: number): void {
    for (const [slot, vec] of into.named) if (!from.named.has(slot)) this.#addVec(vec, from.others, times);
    for (const [slot, vec] of from.named) {
      let target = into.named.get(slot);
      if (target === undefined) {
        this.#spend(into.others.size);
        target = new Map(into.others);
        into.named.set(slot, target);
      }
      this.#addVec(target, vec, times);
    }
    this.#addVec(into.others, from.others, times);
  }

  #addVec(into: Vec, from: Vec, times: number): void {
    this.#spend(from.size + 1);
    for (const [id, count] of from) into.set(id, this.#sat((into.get(id) ?? 0) + this.#sat(count * times)));
  }

  /** Counts the analysis's own work, so no schema makes it slow. */
  #spend(ops: number): void {
    this.#ops += ops;
    if (this.#ops > MAX_OPS) throw new Refused("it is too intricate to analyse");
  }

  #sat(n: number): number {
    return Math.min(n, this.#cap);
  }

  /** Records which resource every object node under `node` belongs to (for `#…` refs). */
  #index(node: object, resource: object): void {
    const stack: [object, object][] = [[node, resource]];
    let seen = 0;
    while (stack.length > 0) {
      const [item, outer] = stack.pop() as [object, object];
      if (this.#resource.has(item)) continue;
      if (++seen > MAX_NODES) throw new Refused(`it has more than ${MAX_NODES} objects`);
      const own = !Array.isArray(item) && item !== this.#root && typeof (item as Record<string, unknown>).$id === "string";
      const here = own ? item : outer;
      this.#resource.set(item, here);
      for (const value of Object.values(item)) if (typeof value === "object" && value !== null) stack.push([value, here]);
    }
  }

  #id(node: Node): number {
    let id = this.#ids.get(node);
    if (id === undefined) {
      id = this.#nodes.length;
      if (id >= MAX_NODES) throw new Refused(`it has more than ${MAX_NODES} subschemas`);
      this.#ids.set(node, id);
      this.#nodes.push(node);
    }
    return id;
  }

  /**
   * The id a child reference is counted under: a node holding only `$ref` (and annotations) is
   * its target plus one application, so `left: {$ref: "#"}` and `right: {$ref: "#"}` count as one
   * node and a binary tree stays linear.
   */
  #key(node: Node): number {
    let target = node;
    let hops = 0;
    while (hops < MAX_INSTANCE_DEPTH && isPureRef(target)) {
      target = this.#resolve(target as object, (target as Record<string, unknown>).$ref);
      hops++;
    }
    // A longer chain (or a cycle of pure refs, which the expansion refuses) is left as it is.
    if (hops === 0 || isPureRef(target)) return this.#id(node);
    const targetId = this.#id(target);
    const name = `${targetId}+${hops}`;
    let id = this.#aliasIds.get(name);
    if (id === undefined) {
      id = this.#id({});
      this.#aliasIds.set(name, id);
      this.#aliases.set(id, { target: targetId, hops });
    }
    return id;
  }

  /** Subschemas applied to the same value as node `id` (with repeats), refs resolved once. */
  #sameInstance(id: number): Node[] {
    const known = this.#same.get(id);
    if (known !== undefined) return known;
    const node = this.#nodes[id] as Node;
    const out: Node[] = [];
    this.#same.set(id, out);
    if (typeof node === "boolean") return out;
    const schema = node as Record<string, unknown>;
    for (const key of SAME_LIST) for (const sub of list(schema[key])) out.push(sub);
    for (const key of SAME_ONE) if (isNode(schema[key])) out.push(schema[key]);
    for (const key of SAME_MAP) for (const sub of mapValues(schema[key])) out.push(sub);
    for (const key of ["$dynamicRef", "$recursiveRef"]) {
      if (key in schema) throw new Refused(`it uses ${key}, which is not analysed`);
    }
    if ("$ref" in schema) out.push(this.#resolve(node, schema.$ref));
    return out;
  }

  #resolve(from: object, ref: unknown): Node {
    if (typeof ref !== "string") throw new Refused("a $ref is not a string");
    const shown = JSON.stringify(ref.slice(0, 80));
    if (!ref.startsWith("#")) throw new Refused(`its $ref ${shown} is not local (only #... refs are followed)`);
    const resource = this.#resource.get(from) ?? (this.#root as object);
    let fragment: string;
    try {
      fragment = decodeURIComponent(ref.slice(1));
    } catch {
      throw new Refused(`its $ref ${shown} is not a valid URI fragment`);
    }
    const target = fragment === "" || fragment.startsWith("/") ? pointer(resource, fragment) : this.#anchor(resource, fragment);
    if (!isNode(target)) throw new Refused(`its $ref ${shown} does not resolve to a schema`);
    if (typeof target === "object" && !this.#resource.has(target)) this.#index(target, resource);
    return target;
  }

  /** The subschema with `$anchor: name` in this resource. */
  #anchor(resource: object, name: string): Node | undefined {
    for (const [node, owner] of this.#resource) {
      if (owner === resource && !Array.isArray(node) && (node as Record<string, unknown>).$anchor === name) return node;
    }
    return undefined;
  }

  /** Schema nodes applied to one value when `id` is: itself plus everything its same-instance edges reach. */
  #expand(id: number): number {
    const known = this.#expansion.get(id);
    if (known !== undefined) return known;
    const alias = this.#aliases.get(id);
    if (alias) {
      const total = this.#sat(alias.hops + this.#expand(alias.target));
      this.#expansion.set(id, total);
      return total;
    }
    this.#enter(id);
    let total = 1;
    for (const sub of this.#sameInstance(id)) total = this.#sat(total + this.#expand(this.#id(sub)));
    this.#visiting.delete(id);
    this.#expansion.set(id, total);
    return total;
  }

  #enter(id: number): void {
    if (this.#visiting.has(id)) {
      throw new Refused("its $refs and combinators form a cycle that never reaches a child value (infinite recursion)");
    }
    this.#visiting.add(id);
  }

  /** The nodes a child value may receive when `id` applies to its parent (through `id`'s whole expansion). */
  #consume(id: number): Consumed {
    const known = this.#consumed.get(id);
    if (known !== undefined) return known;
    const alias = this.#aliases.get(id);
    if (alias) return this.#consume(alias.target);
    const node = this.#nodes[id] as Node;
    const own: Consumed = { named: new Map(), others: new Map() };
    if (typeof node === "object") this.#ownChildren(node as Record<string, unknown>, own);
    // The expansion already refused cycles, so this recursion ends.
    this.#expand(id);
    for (const sub of this.#sameInstance(id)) this.#addConsumed(own, this.#consume(this.#id(sub)), 1);
    this.#consumed.set(id, own);
    return own;
  }

  #ownChildren(schema: Record<string, unknown>, out: Consumed): void {
    const every: Node[] = [];
    for (const key of EVERY_CHILD) {
      if (key === "patternProperties") every.push(...mapValues(schema[key]));
      else if (isNode(schema[key])) every.push(schema[key]);
    }
    // draft-07 tuples (`items: [...]`, `additionalItems`) read like 2020's `prefixItems` and `items`.
    const prefix = Array.isArray(schema.prefixItems) ? list(schema.prefixItems) : list(schema.items);
    const rest: Node[] = [];
    if (isNode(schema.additionalProperties)) rest.push(schema.additionalProperties);
    if (isNode(schema.items)) rest.push(schema.items);
    if (Array.isArray(schema.items) && isNode(schema.additionalItems)) rest.push(schema.additionalItems);
    const vec = (nodes: Node[]): Vec => {
      const out = new Map<number, number>();
      for (const node of [...nodes, ...every]) {
        const id = this.#key(node);
        out.set(id, this.#sat((out.get(id) ?? 0) + 1));
      }
      return out;
    };
    const properties = schema.properties;
    if (typeof properties === "object" && properties !== null && !Array.isArray(properties)) {
      for (const [name, sub] of Object.entries(properties)) if (isNode(sub)) out.named.set(`p:${name}`, vec([sub]));
    }
    prefix.forEach((sub, i) => {
      out.named.set(`i:${i}`, vec([sub]));
    });
    const others = vec(rest);
    for (const [id, count] of others) out.others.set(id, count);
    if (schema.uniqueItems === true) this.#uniqueItems(schema);
  }

  /** ajv compares items pairwise unless `items` has only scalar types: refuse that unless the array is short. */
  #uniqueItems(schema: Record<string, unknown>): void {
    const items = schema.items;
    const types =
      typeof items === "object" && items !== null && !Array.isArray(items) ? (items as { type?: unknown }).type : undefined;
    const typeList = Array.isArray(types) ? types : types === undefined ? [] : [types];
    const scalar =
      typeList.length > 0 && typeList.every((type) => typeof type === "string" && type !== "object" && type !== "array");
    const short = typeof schema.maxItems === "number" && schema.maxItems <= MAX_PAIRWISE_UNIQUE;
    if (!scalar && !short) {
      throw new Refused(
        `its uniqueItems compares array items pairwise (items without a scalar type): give it maxItems <= ${MAX_PAIRWISE_UNIQUE} or items a scalar type`,
      );
    }
  }
}

function isNode(value: unknown): value is Node {
  return typeof value === "boolean" || (typeof value === "object" && value !== null && !Array.isArray(value));
}

function isPureRef(node: Node): boolean {
  return typeof node === "object" && "$ref" in node && Object.keys(node).every((key) => ANNOTATIONS.has(key));
}

/** A multiset's identity, for keeping each distinct one once. */
function vecKey(vec: Vec): string {
  return [...vec].sort((a, b) => a[0] - b[0]).join(";");
}

function list(value: unknown): Node[] {
  return Array.isArray(value) ? value.filter(isNode) : [];
}

function mapValues(value: unknown): Node[] {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? Object.values(value).filter(isNode) : [];
}

function maxVec(a: Vec, b: Vec): Vec {
  const out = new Map(a);
  for (const [id, count] of b) out.set(id, Math.max(out.get(id) ?? 0, count));
  return out;
}

/** RFC 6901 pointer into `root` (`fragment` is already percent-decoded). */
function pointer(root: object, fragment: string): unknown {
  let at: unknown = root;
  if (fragment === "") return at;
  for (const raw of fragment.slice(1).split("/")) {
    const key = raw.replaceAll("~1", "/").replaceAll("~0", "~");
    if (typeof at !== "object" || at === null || !Object.hasOwn(at, key)) return undefined;
    at = (at as Record<string, unknown>)[key];
  }
  return at;
}

/**
 * Throws `makeError(reason)` when {@link schemaCost} refuses `schema`: the
 * check to run before ajv compiles a schema smcp did not write.
 */
export function assertSchemaCost(schema: unknown, makeError: (reason: string) => Error): void {
  const cost = schemaCost(schema);
  if (!cost.ok) throw makeError(cost.reason);
}
