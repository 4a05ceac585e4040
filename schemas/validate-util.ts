/**
 * Shared validation for record schemas: a type check driven by the FieldSpecs (so the
 * validator and the Arrow/Parquet schemas cannot drift apart), plus the LLaVA turn and
 * image rules that conversation, preference, rl-prompt and rollout records share.
 * Every function returns null when fine, else one sentence naming the field.
 */
import type { FieldSpec, FieldType, RecordSchema } from './field.ts';

const INT_RANGES = {
  int8: [-128, 127],
  int32: [-2147483648, 2147483647],
} as const;

/** A short, safe rendering of a bad value for a reason sentence. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'string') return value.length > 40 ? `string "${value.slice(0, 37)}..."` : `string ${JSON.stringify(value)}`;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return `${typeof value} ${String(value)}`;
  if (Array.isArray(value)) return `array of ${value.length}`;
  return typeof value;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value);
}

/** Checks one value against its FieldType; `path` names it in the reason (e.g. `conversations[2].value`). */
export function checkValue(type: FieldType, value: unknown, path: string, nullable = false): string | null {
  if (value === null || value === undefined) {
    return nullable && value === null ? null : `field "${path}" is ${value === null ? 'null' : 'missing'} but is required.`;
  }
  if (typeof type === 'string') {
    switch (type) {
      case 'string':
        return typeof value === 'string' ? null : `field "${path}" must be a string, got ${describeValue(value)}.`;
      case 'bool':
        return typeof value === 'boolean' ? null : `field "${path}" must be a boolean, got ${describeValue(value)}.`;
      case 'int8':
      case 'int32': {
        const [lo, hi] = INT_RANGES[type];
        if (typeof value !== 'number' || !Number.isInteger(value) || value < lo || value > hi) {
          return `field "${path}" must be an ${type} integer in [${lo}, ${hi}], got ${describeValue(value)}.`;
        }
        return null;
      }
      case 'int64':
        if (typeof value === 'bigint') return value >= -(2n ** 63n) && value < 2n ** 63n ? null : `field "${path}" is out of int64 range.`;
        return typeof value === 'number' && Number.isSafeInteger(value) ? null : `field "${path}" must be an int64 (safe integer or bigint), got ${describeValue(value)}.`;
      case 'float32':
      case 'float64':
        if (typeof value !== 'number') return `field "${path}" must be a ${type} number, got ${describeValue(value)}.`;
        // NaN/Infinity poison training and aggregate statistics; refuse them at the boundary.
        return Number.isFinite(value) ? null : `field "${path}" must be a finite ${type}, got ${String(value)}.`;
    }
  }
  if ('list' in type) {
    if (!Array.isArray(value) && !ArrayBuffer.isView(value)) return `field "${path}" must be a list, got ${describeValue(value)}.`;
    const items = value as ArrayLike<unknown>;
    for (let i = 0; i < items.length; i++) {
      const reason = checkValue(type.list, items[i], `${path}[${i}]`);
      if (reason) return reason;
    }
    return null;
  }
  if (!isPlainObject(value)) return `field "${path}" must be an object, got ${describeValue(value)}.`;
  return checkStruct(type.struct, value, path);
}

function checkStruct(fields: readonly FieldSpec[], value: Record<string, unknown>, prefix: string): string | null {
  for (const f of fields) {
    const reason = checkValue(f.type, value[f.name], prefix ? `${prefix}.${f.name}` : f.name, f.nullable ?? false);
    if (reason) return reason;
  }
  // Unknown keys would be silently dropped by the columnar writers; say so instead.
  const keys = Object.keys(value);
  if (keys.length !== fields.length) {
    const known = fieldNames(fields);
    for (const key of keys) {
      if (!known.has(key)) return `field "${prefix ? `${prefix}.${key}` : key}" is not part of the schema.`;
    }
  }
  return null;
}

const namesCache = new WeakMap<readonly FieldSpec[], Set<string>>();
function fieldNames(fields: readonly FieldSpec[]): Set<string> {
  let names = namesCache.get(fields);
  if (!names) namesCache.set(fields, (names = new Set(fields.map((f) => f.name))));
  return names;
}

/** Checks a whole record's shape against its fields (types, nullability, no unknown keys). */
export function checkFields(fields: readonly FieldSpec[], record: unknown): string | null {
  if (!isPlainObject(record)) return `the record must be an object, got ${describeValue(record)}.`;
  return checkStruct(fields, record, '');
}

/** A yes/no shape check: no reason text, so no path strings are built for valid records. */
type ShapeCheck = (value: unknown) => boolean;

/**
 * Compiles `checkValue`'s rules for one type into closures that only answer valid or not:
 * it accepts exactly what `checkValue` accepts. Validators run it first and ask
 * `checkValue` for the reason only when it says no.
 */
function compileShape(type: FieldType, nullable: boolean): ShapeCheck {
  const check = compileNonNull(type);
  return nullable ? (v) => v === null || check(v) : check;
}

/** A check that also refuses null and undefined (every test below does: typeof, isArray, isPlainObject). */
function compileNonNull(type: FieldType): ShapeCheck {
  if (typeof type === 'string') {
    switch (type) {
      case 'string': return (v) => typeof v === 'string';
      case 'bool': return (v) => typeof v === 'boolean';
      case 'int8':
      case 'int32': {
        const [lo, hi] = INT_RANGES[type];
        return (v) => typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;
      }
      case 'int64':
        return (v) => (typeof v === 'bigint' ? v >= -(2n ** 63n) && v < 2n ** 63n : typeof v === 'number' && Number.isSafeInteger(v));
      case 'float32':
      case 'float64':
        return (v) => typeof v === 'number' && Number.isFinite(v);
    }
  }
  if ('list' in type) {
    const item = compileShape(type.list, false);
    return (v) => {
      if (!Array.isArray(v) && !ArrayBuffer.isView(v)) return false;
      const items = v as unknown as ArrayLike<unknown>;
      for (let i = 0; i < items.length; i++) if (!item(items[i])) return false;
      return true;
    };
  }
  return compileStruct(type.struct);
}

function compileStruct(fields: readonly FieldSpec[]): ShapeCheck {
  const names = fields.map((f) => f.name);
  const checks = fields.map((f) => compileShape(f.type, f.nullable ?? false));
  const n = fields.length;
  const known = fieldNames(fields);
  return (v) => {
    if (!isPlainObject(v)) return false;
    for (let i = 0; i < n; i++) if (!checks[i]!(v[names[i]!])) return false;
    const keys = Object.keys(v);
    if (keys.length !== n) {
      for (const key of keys) if (!known.has(key)) return false;
    }
    return true;
  };
}

/**
 * Builds a RecordSchema from its fields and the kind's own rules, which run only on
 * records whose shape already matches (so they may trust the types).
 */
export function defineRecordSchema<T>(spec: {
  name: string;
  version: number;
  fields: readonly FieldSpec[];
  rules?: (record: T) => string | null;
}): RecordSchema<T> {
  const { name, version, fields, rules } = spec;
  const shape = compileStruct(fields);
  const validate = (record: unknown): string | null => {
    if (!shape(record)) {
      const reason = checkFields(fields, record);
      if (reason !== null) return reason;
    }
    return rules ? rules(record as T) : null;
  };
  return {
    name,
    version,
    fields,
    validate,
    is: (record: unknown): record is T => validate(record) === null,
  };
}

// ---------------------------------------------------------------- LLaVA rules

export const IMAGE_TOKEN = '<image>';
export const IMAGE_PREFIX = '<image>\n';

export interface Turn {
  from: 'human' | 'gpt';
  value: string;
}

/** The `list<struct<from, value>>` column every conversation-like record has. */
export const TURNS_TYPE: FieldType = {
  list: {
    struct: [
      { name: 'from', type: 'string' },
      { name: 'value', type: 'string' },
    ],
  },
};

export const FACTS_TYPE: FieldType = { list: 'string' };

/** `value.slice(from).trim() === ''`, answered without slicing or trimming when a printable ASCII character comes first. */
function isBlank(value: string, from = 0): boolean {
  const c = value.charCodeAt(from);
  if (c > 0x20 && c < 0x7f) return false;
  return (from === 0 ? value : value.slice(from)).trim() === '';
}

export function checkNonEmpty(value: string, field: string): string | null {
  return isBlank(value) ? `field "${field}" is empty.` : null;
}

/** Image paths are relative to an image root: no leading slash, drive letter or `..` segment. */
export function checkImagePath(image: string | null, field = 'image'): string | null {
  if (image === null) return null;
  if (isBlank(image)) return `field "${field}" is an empty path; use null for a text-only record.`;
  const c0 = image.charCodeAt(0);
  const letter = (c0 >= 65 && c0 <= 90) || (c0 >= 97 && c0 <= 122);
  if (c0 === 47 /* / */ || c0 === 92 /* \\ */ || (letter && image.charCodeAt(1) === 58 /* : */)) {
    return `field "${field}" must be relative to the image root, got absolute path ${JSON.stringify(image)}.`;
  }
  // Splitting allocates: only paths holding ".." at all can have a ".." segment.
  if (image.includes('..') && image.split(/[/\\]/).includes('..')) return `field "${field}" must not contain a ".." segment, got ${JSON.stringify(image)}.`;
  return null;
}

/** `ending`: which speaker the last turn must be; `exactly`: a fixed turn count. */
export interface TurnRules {
  image: string | null;
  ending: 'human' | 'gpt';
  exactly?: number;
  field?: string;
}

/**
 * LLaVA conversation rules: turns alternate human/gpt starting with human; no
 * empty values; `<image>\n` opens the first human turn iff there is an image and
 * `<image>` appears nowhere else.
 */
export function checkTurns(turns: readonly Turn[], rules: TurnRules): string | null {
  const field = rules.field ?? 'conversations';
  if (turns.length === 0) return `field "${field}" has no turns.`;
  if (rules.exactly !== undefined && turns.length !== rules.exactly) {
    return `field "${field}" must have exactly ${rules.exactly} turn${rules.exactly === 1 ? '' : 's'}, got ${turns.length}.`;
  }
  for (let i = 0; i < turns.length; i++) {
    const turn = turns[i]!;
    const expected = i % 2 === 0 ? 'human' : 'gpt';
    if (turn.from !== expected) {
      return `turn ${i} is from ${JSON.stringify(turn.from)} but "${expected}" was expected (turns alternate human/gpt starting with human).`;
    }
    const value = turn.value;
    if (isBlank(value)) return `turn ${i} has an empty value.`;
    // The body is the value after a leading `<image>\n` on the first turn of an image record.
    let body = 0;
    if (i === 0 && rules.image !== null) {
      if (!value.startsWith(IMAGE_PREFIX)) return `turn 0 must start with "<image>\\n" because the record has an image.`;
      body = IMAGE_PREFIX.length;
    }
    if (value.indexOf(IMAGE_TOKEN, body) !== -1) {
      return i === 0 && rules.image === null
        ? `turn 0 holds "<image>" but the record has no image.`
        : `turn ${i} holds "<image>" outside the start of the first human turn.`;
    }
    if (i === 0 && isBlank(value, body)) return `turn 0 has no text after "<image>\\n".`;
  }
  const last = turns[turns.length - 1]!;
  if (last.from !== rules.ending) {
    return rules.ending === 'gpt'
      ? `turn ${turns.length - 1} is from "human" with no gpt answer after it (a conversation needs complete human/gpt pairs).`
      : `turn ${turns.length - 1} is from "gpt" but the prompt must end with a human turn.`;
  }
  return null;
}

/** `<image>` belongs only at the start of the first human turn, never in outputs/responses. */
export function checkNoImageToken(value: string, field: string): string | null {
  return value.includes(IMAGE_TOKEN) ? `field "${field}" holds "<image>", which belongs only at the start of the first human turn.` : null;
}

/** Runs checks in order and returns the first reason. */
export function firstReason(...checks: Array<() => string | null>): string | null {
  for (const check of checks) {
    const reason = check();
    if (reason) return reason;
  }
  return null;
}

/** Facts are captions/options read by the reward model; an empty one is a conversion bug. */
export function checkFacts(facts: readonly string[], field = 'facts'): string | null {
  for (let i = 0; i < facts.length; i++) {
    if (facts[i]!.trim() === '') return `field "${field}[${i}]" is empty.`;
  }
  return null;
}
