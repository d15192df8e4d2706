import { hash } from 'node:crypto';
import type { JsonObject, JsonValue } from '../store/types.js';
import { InvalidBodyError } from './errors.js';

/** Deepest nesting of objects and arrays a record body may have. */
export const MAX_JSON_DEPTH = 64;

/**
 * Canonical JSON: object keys sorted by code unit, no white space, numbers as
 * JavaScript prints them. Two equal values always give the same text, so the text
 * can be hashed. Throws InvalidBodyError on values JSON cannot carry and on
 * nesting deeper than MAX_JSON_DEPTH.
 */
export function canonicalJson(value: unknown, depth = 0): string {
  if (depth > MAX_JSON_DEPTH) throw new InvalidBodyError(`nested deeper than ${MAX_JSON_DEPTH} levels`);
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new InvalidBodyError(`number ${value} is not valid JSON`);
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ',';
          out += value[i] === undefined ? 'null' : canonicalJson(value[i], depth + 1);
        }
        return `${out}]`;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        throw new InvalidBodyError(`a ${proto?.constructor?.name ?? 'non-plain'} object is not valid JSON`);
      }
      const keys = Object.keys(value).sort();
      let out = '{';
      let first = true;
      for (const key of keys) {
        const v = (value as Record<string, unknown>)[key];
        if (v === undefined) continue;
        if (!first) out += ',';
        first = false;
        out += `${JSON.stringify(key)}:${canonicalJson(v, depth + 1)}`;
      }
      return `${out}}`;
    }
    default:
      throw new InvalidBodyError(`a ${typeof value} is not valid JSON`);
  }
}

/**
 * Sets an own, enumerable property, whatever its name: plain assignment of
 * `__proto__` would set the object's prototype instead of adding a field.
 */
export function setField<T>(target: Record<string, T>, name: string, value: T): void {
  Object.defineProperty(target, name, { value, writable: true, enumerable: true, configurable: true });
}

/** SHA-256 as hex; the one-shot API costs half of a Hash object for short inputs. */
export function sha256Hex(text: string): string {
  return hash('sha256', text, 'hex');
}

/**
 * True when a JSON value nests objects and arrays more than `max` levels below its
 * top (the top object or array is level 0). A walk that stops at the first
 * container past the limit, so a hostile body never takes it deeper than `max` + 1
 * calls. It visits containers only: a flat body costs one loop over its values,
 * a fraction of a scan of its text.
 */
export function jsonDepthExceeds(value: unknown, max = MAX_JSON_DEPTH): boolean {
  return typeof value === 'object' && value !== null && nestsPast(value, max + 1);
}

/** True when `container` holds containers more than `room` - 1 levels further down. */
function nestsPast(container: object, room: number): boolean {
  if (room === 0) return true;
  if (Array.isArray(container)) {
    for (let i = 0; i < container.length; i++) {
      const v: unknown = container[i];
      if (typeof v === 'object' && v !== null && nestsPast(v, room - 1)) return true;
    }
    return false;
  }
  for (const key in container) {
    const v: unknown = (container as Record<string, unknown>)[key];
    if (typeof v === 'object' && v !== null && nestsPast(v, room - 1)) return true;
  }
  return false;
}

/** True for a plain JSON object (not an array, not null). */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Deep equality of two JSON values. */
export function jsonEqual(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  return canonicalJson(a) === canonicalJson(b);
}
