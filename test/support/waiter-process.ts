/// <reference types="node" />
/**
 * A separate process that waits for a lock, for tests that kill waiters: started as
 * `node --import tsx test/support/waiter-process.ts <redis url> <prefix> <key> <count>`, it makes
 * `count` waiters (one locker, so one inbox) wait for `key` with a 1.5 s lease, and prints
 * `waiting` once they have been sent. It never releases anything: kill it.
 */

import { createLocker } from "edgelock";
import { ioredisAdapter } from "edgelock/ioredis";
import { Redis } from "ioredis";

const [url = "", prefix = "", key = "", count = "1"] = process.argv.slice(2);
const client = new Redis(url);
const locker = createLocker({ adapter: ioredisAdapter(client), prefix });
for (let i = 0; i < Number(count); i++) {
  locker.acquire(key, 1_500, { timeout: 60_000 }).catch(() => {});
}
process.stdout.write("waiting\n");
