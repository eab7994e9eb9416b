/**
 * A single pass over JSON text, before it is parsed, that finds what `JSON.parse` accepts
 * but SRP refuses: nesting deeper than a limit (SRP-FRM-017, SRP-CON-021) and duplicate
 * member names in an object (SRP-FRM-016). Nothing is allocated for strings outside
 * member names, and string contents are skipped with `indexOf`, so the scan costs a
 * fraction of the parse it precedes. Text that is not JSON at all is not diagnosed here:
 * the scan does not throw on it, and the parse that follows refuses it.
 */

/** Nesting limits of SRP JSON: the deepest frame (SRP-FRM-017) and the deepest consumer request body (SRP-CON-021). */
export const JSON_DEPTH_LIMITS = Object.freeze({
  /** Deepest nesting of objects and arrays in one frame. */
  frame: 128,
  /** Deepest nesting of objects and arrays in one consumer API request body. */
  body: 64,
});

/** Options for {@link scanJson}. */
export interface ScanJsonOptions {
  /** Deepest nesting of objects and arrays accepted (the top-level value is depth 1). */
  maxDepth: number;
  /** Whether to refuse objects with two members of the same name (after unescaping). Default: false. */
  duplicates?: boolean;
}

/** Outcome of {@link scanJson}: `ok` with the deepest nesting seen, or the first problem and its offset (in UTF-16 code units). */
export type ScanJsonResult =
  | { ok: true; depth: number }
  | { ok: false; problem: "depth"; offset: number; limit: number }
  | { ok: false; problem: "duplicate"; offset: number; name: string };

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;

/** Objects with at most this many members compare names linearly; larger ones switch to a `Set`. */
const LINEAR_MEMBERS = 16;

/** Index of the quote that ends the string whose contents start at `from`, or `text.length`. */
function stringEnd(text: string, from: number): number {
  let q = text.indexOf('"', from);
  while (q !== -1) {
    let slashes = 0;
    for (let b = q - 1; b >= from && text.charCodeAt(b) === BACKSLASH; b--) slashes++;
    if ((slashes & 1) === 0) return q;
    q = text.indexOf('"', q + 1);
  }
  return text.length;
}

/** The member name of raw string contents: raw unless it holds an escape. */
function memberName(raw: string): string {
  if (raw.indexOf("\\") === -1) return raw;
  try {
    return JSON.parse(`"${raw}"`) as string;
  } catch {
    return raw;
  }
}

/** Member names seen in one open object. */
class Members {
  #list: string[] = [];
  #set: Set<string> | undefined;
  /** Adds a name; false when it was already there. */
  add(name: string): boolean {
    if (this.#set) {
      if (this.#set.has(name)) return false;
      this.#set.add(name);
      return true;
    }
    if (this.#list.includes(name)) return false;
    this.#list.push(name);
    if (this.#list.length > LINEAR_MEMBERS) this.#set = new Set(this.#list);
    return true;
  }
}

/**
 * Scans JSON text for nesting deeper than `maxDepth` and, with `duplicates`, for
 * duplicate member names at any depth. Names are compared after unescaping, so `"a"`
 * and `"\u0061"` are the same name. Run it before `JSON.parse`: deep nesting is refused
 * before the parser spends time on it.
 *
 * @example
 * scanJson('{"type":"heartbeat","type":"x"}', { maxDepth: 128, duplicates: true });
 * // { ok: false, problem: "duplicate", offset: 20, name: "type" }
 * scanJson("[[[1]]]", { maxDepth: 2 }); // { ok: false, problem: "depth", offset: 2, limit: 2 }
 */
export function scanJson(text: string, options: ScanJsonOptions): ScanJsonResult {
  const { maxDepth } = options;
  const duplicates = options.duplicates === true;
  // One entry per open container: the names of an object (or `null` when names are not
  // checked), or `false` for an array.
  const open: (Members | null | false)[] = [];
  let deepest = 0;
  let expectName = false;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = stringEnd(text, i + 1);
      if (expectName) {
        expectName = false;
        const members = open[open.length - 1];
        if (members && !members.add(memberName(text.slice(i + 1, end)))) {
          return { ok: false, problem: "duplicate", offset: i, name: memberName(text.slice(i + 1, end)) };
        }
      }
      i = end;
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (open.length >= maxDepth) return { ok: false, problem: "depth", offset: i, limit: maxDepth };
      const isObject = c === OPEN_OBJECT;
      open.push(isObject ? (duplicates ? new Members() : null) : false);
      if (open.length > deepest) deepest = open.length;
      expectName = isObject;
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      open.pop();
      expectName = false;
    } else if (c === COMMA) {
      expectName = open.length > 0 && open[open.length - 1] !== false;
    } else if (c === COLON) {
      expectName = false;
    }
  }
  return { ok: true, depth: deepest };
}
