/**
 * A min-heap of items by due time, for the routing index's timed re-classifications (a
 * health score's cache running out, an instance's ramp-up ending). Pushing the same item
 * again with a new time does not remove the old record: the caller checks, when a record
 * comes due, whether it is still current (lazy deletion).
 */

/** Items ordered by the time they come due. */
export class DueHeap<T> {
  readonly #due: number[] = [];
  readonly #items: T[] = [];

  /** Records that `item` comes due at `due`. */
  push(due: number, item: T): void {
    const d = this.#due;
    const it = this.#items;
    let i = d.length;
    d.push(due);
    it.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (d[parent]! <= due) break;
      d[i] = d[parent]!;
      it[i] = it[parent]!;
      i = parent;
    }
    d[i] = due;
    it[i] = item;
  }

  /** Removes and returns the earliest record due at or before `now`, or undefined. */
  popDue(now: number): { due: number; item: T } | undefined {
    const d = this.#due;
    if (d.length === 0 || d[0]! > now) return undefined;
    const it = this.#items;
    const top = { due: d[0]!, item: it[0]! };
    const lastDue = d.pop()!;
    const lastItem = it.pop()!;
    const n = d.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const c = l + 1 < n && d[l + 1]! < d[l]! ? l + 1 : l;
        if (d[c]! >= lastDue) break;
        d[i] = d[c]!;
        it[i] = it[c]!;
        i = c;
      }
      d[i] = lastDue;
      it[i] = lastItem;
    }
    return top;
  }

  /** Records held, current or not. */
  get size(): number {
    return this.#due.length;
  }

  /** Forgets every record. */
  clear(): void {
    this.#due.length = 0;
    this.#items.length = 0;
  }
}
