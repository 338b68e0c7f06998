import { useLayoutEffect, useState } from "preact/hooks";
import type { Json, JsonObj } from "../api.js";

/**
 * A form generated from a tool's input JSON Schema. Each property becomes an
 * input of its kind: text, number (integer: step 1), checkbox or a
 * true/false choice, a select for an enum, a list of inputs for an array of
 * scalars; anything else (nested objects, unions) a JSON textarea. A schema
 * that is not an object of properties gets one JSON textarea for all the
 * arguments. The server validates again (bad_args), so this checks only
 * what it must to build JSON: numbers that parse, JSON that parses.
 */

type Scalar =
  | { type: "string" | "number" | "integer" | "boolean"; min?: number; max?: number }
  | { type: "enum"; options: Json[] };

/** How one property is edited. */
export type FieldSpec = Scalar | { type: "array"; item: Scalar } | { type: "json" };

/** One property of the form. */
export interface Field {
  name: string;
  spec: FieldSpec;
  required: boolean;
  description: string;
  default?: Json;
}

/** The form's fields, or undefined when the schema is not an object of properties (one JSON textarea then). */
export function fieldsOf(schema: JsonObj): Field[] | undefined {
  const properties = schema.properties;
  if (schema.type !== "object" || !isObject(properties)) return undefined;
  const required = new Set(Array.isArray(schema.required) ? schema.required.filter((r) => typeof r === "string") : []);
  return Object.entries(properties).map(([name, prop]) => {
    const sub = isObject(prop) ? prop : {};
    const field: Field = {
      name,
      spec: specOf(sub),
      required: required.has(name),
      description: typeof sub.description === "string" ? sub.description : "",
    };
    if ("default" in sub) field.default = sub.default as Json;
    return field;
  });
}

function isObject(value: Json | undefined): value is JsonObj {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function scalarOf(schema: JsonObj): Scalar | undefined {
  if (Array.isArray(schema.enum) && schema.enum.every((v) => v === null || typeof v !== "object")) {
    return { type: "enum", options: schema.enum };
  }
  const type = schema.type;
  if (type === "string" || type === "boolean") return { type };
  if (type === "number" || type === "integer") {
    const bounds: { min?: number; max?: number } = {};
    // Zod writes the safe-integer range as bounds of every int: not worth showing.
    if (typeof schema.minimum === "number" && Math.abs(schema.minimum) < Number.MAX_SAFE_INTEGER) bounds.min = schema.minimum;
    if (typeof schema.maximum === "number" && Math.abs(schema.maximum) < Number.MAX_SAFE_INTEGER) bounds.max = schema.maximum;
    return { type, ...bounds };
  }
  return undefined;
}

function specOf(schema: JsonObj): FieldSpec {
  const scalar = scalarOf(schema);
  if (scalar) return scalar;
  if (schema.type === "array" && isObject(schema.items)) {
    const item = scalarOf(schema.items);
    if (item) return { type: "array", item };
  }
  return { type: "json" };
}

/** What the inputs hold: text for scalars, a list of texts for arrays, a boolean for a required checkbox. */
export type FormValues = Record<string, string | string[] | boolean>;

/** The starting values: each default, else empty (a required boolean: false; a required array: one empty row). */
export function initialValues(fields: Field[]): FormValues {
  const values: FormValues = {};
  for (const f of fields) {
    const d = f.default;
    if (f.spec.type === "boolean" && f.required) values[f.name] = d === true;
    else if (f.spec.type === "array") values[f.name] = Array.isArray(d) ? d.map((v) => textOf(v)) : [""];
    else if (f.spec.type === "json") values[f.name] = d === undefined ? "" : JSON.stringify(d, null, 2);
    else values[f.name] = d === undefined ? "" : textOf(d);
  }
  return values;
}

function textOf(value: Json): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** A value the form could not turn into JSON, by field. */
export type FormErrors = Record<string, string>;

function parseScalar(spec: Scalar, raw: string): { value: Json } | { error: string } {
  switch (spec.type) {
    case "string":
      return { value: raw };
    case "number":
    case "integer": {
      const n = Number(raw.trim());
      if (raw.trim() === "" || !Number.isFinite(n)) return { error: "expected a number" };
      if (spec.type === "integer" && !Number.isInteger(n)) return { error: "expected a whole number" };
      return { value: n };
    }
    case "boolean":
      return raw === "true" ? { value: true } : raw === "false" ? { value: false } : { error: "expected true or false" };
    case "enum": {
      // The select's values are the options' JSON, so a number or null option keeps its type.
      const option = spec.options.find((o) => JSON.stringify(o) === raw);
      return option === undefined ? { error: "choose one of the options" } : { value: option };
    }
  }
}

/** Builds the arguments; empty optional fields are left out. */
export function buildArgs(fields: Field[], values: FormValues): { args: JsonObj; errors: FormErrors } {
  const args: JsonObj = {};
  const errors: FormErrors = {};
  for (const f of fields) {
    const raw = values[f.name];
    if (typeof raw === "boolean") {
      args[f.name] = raw;
      continue;
    }
    if (Array.isArray(raw)) {
      const items: Json[] = [];
      raw.forEach((text, i) => {
        if (text.trim() === "" && f.spec.type === "array" && f.spec.item.type !== "string") return; // a blank row is no item
        const parsed = parseScalar((f.spec as { item: Scalar }).item, text);
        if ("error" in parsed) errors[`${f.name}.${i}`] = parsed.error;
        else items.push(parsed.value);
      });
      if (items.length > 0 || f.required) args[f.name] = items;
      continue;
    }
    const text = raw ?? "";
    if (text === "" && !(f.required && f.spec.type === "string")) {
      if (f.required) errors[f.name] = "required";
      continue;
    }
    if (f.spec.type === "json") {
      try {
        args[f.name] = JSON.parse(text) as Json;
      } catch {
        errors[f.name] = "not valid JSON";
      }
      continue;
    }
    if (f.spec.type === "array") continue; // held as a list above
    const parsed = parseScalar(f.spec, text);
    if ("error" in parsed) errors[f.name] = parsed.error;
    else args[f.name] = parsed.value;
  }
  return { args, errors };
}

/** The inputs of one tool's form (the caller owns the values and the submit button). */
export function SchemaFields(props: {
  idPrefix: string;
  fields: Field[];
  values: FormValues;
  errors: FormErrors;
  onChange: (values: FormValues) => void;
}) {
  const { fields, values, errors, onChange, idPrefix } = props;
  const set = (name: string, value: string | string[] | boolean) => onChange({ ...values, [name]: value });
  if (fields.length === 0) return <p class="muted">This tool takes no arguments.</p>;
  return (
    <div class="fields">
      {fields.map((f) => {
        const id = `${idPrefix}-${f.name}`;
        const help = f.description ? `${id}-help` : undefined;
        const error = errors[f.name];
        const describedBy = [help, error ? `${id}-error` : undefined].filter(Boolean).join(" ") || undefined;
        const label = (
          <label for={id} id={`${id}-label`}>
            <code>{f.name}</code>
            {f.required ? (
              <span class="required" title="required">
                {" "}
                (required)
              </span>
            ) : null}
            <span class="type"> {typeLabel(f.spec)}</span>
          </label>
        );
        return (
          <div class="field" key={f.name}>
            {f.spec.type === "boolean" && f.required ? (
              <div class="check">
                <input
                  id={id}
                  type="checkbox"
                  checked={values[f.name] === true}
                  aria-describedby={describedBy}
                  onChange={(e) => set(f.name, (e.currentTarget as HTMLInputElement).checked)}
                />
                {label}
              </div>
            ) : (
              label
            )}
            {f.description ? (
              <p class="help" id={help}>
                {f.description}
              </p>
            ) : null}
            {f.spec.type === "array" ? (
              <ArrayInput
                id={id}
                item={f.spec.item}
                rows={(values[f.name] as string[]) ?? []}
                errors={errors}
                name={f.name}
                describedBy={describedBy}
                onChange={(rows) => set(f.name, rows)}
              />
            ) : f.spec.type === "boolean" && f.required ? null : (
              <ScalarInput
                id={id}
                spec={f.spec}
                required={f.required}
                value={String(values[f.name] ?? "")}
                describedBy={describedBy}
                invalid={error !== undefined}
                onChange={(v) => set(f.name, v)}
              />
            )}
            {error ? (
              <p class="field-error" id={`${id}-error`} role="alert">
                {error}
              </p>
            ) : null}
          </div>
        );
      })}
    </div>
  );
}

function typeLabel(spec: FieldSpec): string {
  if (spec.type === "array") return `list of ${spec.item.type === "enum" ? "choices" : `${spec.item.type}s`}`;
  if (spec.type === "json") return "JSON";
  if (spec.type === "enum") return "choice";
  const bounds =
    "min" in spec && spec.min !== undefined && "max" in spec && spec.max !== undefined ? ` ${spec.min}–${spec.max}` : "";
  return `${spec.type}${bounds}`;
}

function ScalarInput(props: {
  id: string;
  spec: Scalar | { type: "json" };
  required: boolean;
  value: string;
  describedBy: string | undefined;
  invalid: boolean;
  /** A row of a list: its own name ("numbers, item 2"), as the field's label names the whole list. */
  label?: string;
  onChange: (value: string) => void;
}) {
  const { id, spec, value, describedBy, onChange, invalid, required, label } = props;
  const common = {
    id,
    "aria-label": label,
    "aria-describedby": describedBy,
    "aria-invalid": invalid ? ("true" as const) : undefined,
    "aria-required": required ? ("true" as const) : undefined,
  };
  const onInput = (e: Event) => onChange((e.currentTarget as HTMLInputElement).value);
  switch (spec.type) {
    case "json":
      return <textarea {...common} rows={4} spellcheck={false} value={value} onInput={onInput} />;
    case "boolean":
      return (
        <select {...common} value={value} onChange={onInput}>
          <option value="">(leave out)</option>
          <option value="true">true</option>
          <option value="false">false</option>
        </select>
      );
    case "enum":
      return (
        <select {...common} value={value} onChange={onInput}>
          <option value="">{required ? "(choose)" : "(leave out)"}</option>
          {spec.options.map((o) => (
            <option key={JSON.stringify(o)} value={JSON.stringify(o)}>
              {typeof o === "string" ? o : JSON.stringify(o)}
            </option>
          ))}
        </select>
      );
    case "number":
    case "integer":
      return (
        <input
          {...common}
          type="number"
          inputMode={spec.type === "integer" ? "numeric" : "decimal"}
          step={spec.type === "integer" ? 1 : "any"}
          min={spec.min}
          max={spec.max}
          value={value}
          onInput={onInput}
        />
      );
    default:
      return <input {...common} type="text" value={value} onInput={onInput} />;
  }
}

/** A list of scalar inputs with buttons to add and remove rows (all reachable by keyboard). */
function ArrayInput(props: {
  id: string;
  name: string;
  item: Scalar;
  rows: string[];
  errors: FormErrors;
  describedBy: string | undefined;
  onChange: (rows: string[]) => void;
}) {
  const { id, name, item, rows, errors, describedBy, onChange } = props;
  const [focusRow, setFocusRow] = useState<number | undefined>(undefined);
  return (
    <fieldset class="array" aria-labelledby={`${id}-label`} aria-describedby={describedBy}>
      {rows.map((row, i) => {
        const rowId = i === 0 ? id : `${id}-${i}`;
        const error = errors[`${name}.${i}`];
        return (
          <div class="array-row" key={i}>
            <ScalarInput
              id={rowId}
              spec={item}
              required={false}
              value={row}
              describedBy={error ? `${rowId}-error` : undefined}
              invalid={error !== undefined}
              label={`${name}, item ${i + 1}`}
              onChange={(v) => onChange(rows.map((r, j) => (j === i ? v : r)))}
            />
            <button
              type="button"
              class="small"
              aria-label={`Remove item ${i + 1} of ${name}`}
              onClick={() => onChange(rows.filter((_, j) => j !== i))}
            >
              Remove
            </button>
            {error ? (
              <span class="field-error" id={`${rowId}-error`} role="alert">
                {error}
              </span>
            ) : null}
            {focusRow === i ? <FocusNext id={rowId} done={() => setFocusRow(undefined)} /> : null}
          </div>
        );
      })}
      <button
        type="button"
        class="small"
        aria-label={`Add an item to ${name}`}
        onClick={() => {
          onChange([...rows, ""]);
          setFocusRow(rows.length);
        }}
      >
        Add item
      </button>
    </fieldset>
  );
}

/** Moves focus to a new row's input once it is rendered (keyboard users keep typing). */
function FocusNext(props: { id: string; done: () => void }) {
  const { id, done } = props;
  // A layout effect runs as the row is committed, before the next key press is read (an effect may run a frame later).
  useLayoutEffect(() => {
    document.getElementById(id)?.focus();
    done();
  }, [id, done]);
  return null;
}
