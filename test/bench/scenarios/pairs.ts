/**
 * The uncontended unit of work of scenarios 1 and 2: acquire a key nobody holds, release it.
 */

import type { LockClient } from "../peers.js";

/** A function doing one acquire+release pair on a fresh key each call. */
export function pairs(client: LockClient, prefix: string, ttl: number): () => Promise<void> {
  let next = 0;
  return async () => {
    const key = `${prefix}:${next++}`;
    const held = await client.tryAcquire(key, ttl);
    if (!held) throw new Error(`the uncontended key ${key} was not acquired`);
    await held.release();
  };
}
