/**
 * A fixed-capacity FIFO ring, bounded by entry count and by total bytes. Push, shift and peek are
 * O(1); pushing into a full ring evicts the oldest items and returns them so the caller can count,
 * log or spool each one.
 *
 * @example
 * const ring = new RingBuffer<string>({ capacity: 2, maxBytes: 1024 });
 * ring.push('a', 1);
 * ring.push('b', 1);
 * ring.push('c', 1); // returns ['a']
 * ring.toArray(); // ['b', 'c']
 */
export class RingBuffer<T> {
  readonly capacity: number;
  readonly maxBytes: number;
  private readonly items: (T | undefined)[];
  private readonly sizes: number[];
  private head = 0;
  private count = 0;
  private totalBytes = 0;

  constructor(options: { capacity: number; maxBytes: number }) {
    if (!Number.isInteger(options.capacity) || options.capacity < 1) {
      throw new RangeError(`RingBuffer capacity must be a positive integer, got ${options.capacity}`);
    }
    if (!Number.isFinite(options.maxBytes) || options.maxBytes < 1) {
      throw new RangeError(`RingBuffer maxBytes must be a positive number, got ${options.maxBytes}`);
    }
    this.capacity = options.capacity;
    this.maxBytes = options.maxBytes;
    this.items = new Array<T | undefined>(options.capacity);
    this.sizes = new Array<number>(options.capacity).fill(0);
  }

  get size(): number {
    return this.count;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  /** Appends `item`, evicting the oldest items until both bounds hold; returns the evicted ones. */
  push(item: T, bytes: number): T[] {
    const evicted: T[] = [];
    while (this.count > 0 && (this.count === this.capacity || this.totalBytes + bytes > this.maxBytes)) {
      evicted.push(this.shift() as T);
    }
    const tail = (this.head + this.count) % this.capacity;
    this.items[tail] = item;
    this.sizes[tail] = bytes;
    this.count += 1;
    this.totalBytes += bytes;
    return evicted;
  }

  /** Removes and returns the oldest item. */
  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.totalBytes -= this.sizes[this.head];
    this.sizes[this.head] = 0;
    this.head = (this.head + 1) % this.capacity;
    this.count -= 1;
    return item;
  }

  /** The oldest item, left in place. */
  peek(): T | undefined {
    return this.count === 0 ? undefined : this.items[this.head];
  }

  /** Up to `n` of the oldest items, oldest first, left in place. */
  peekMany(n: number): T[] {
    const out: T[] = [];
    for (let i = 0; i < Math.min(n, this.count); i += 1) {
      out.push(this.items[(this.head + i) % this.capacity] as T);
    }
    return out;
  }

  /** All items, oldest first. */
  toArray(): T[] {
    return this.peekMany(this.count);
  }
}
