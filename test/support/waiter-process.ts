/// <reference types="node" />
/**
 * A separate process that waits for a lock, for tests that kill waiters: started as
 * `node --import tsx test/support/waiter-process.ts <target> <prefix> <key> <count>`, where
 * `<target>` is a `redis://` URL or `cluster:<host>:<port>,<host>:<port>,…` (a Redis Cluster's
 * nodes), it makes `count` waiters (one locker, so one inbox) wait for `key` with a 1.5 s lease,
 * and prints `waiting` once they have been sent. It never releases anything: kill it.
 */

import { createLocker } from "edgelock";
import { ioredisAdapter } from "edgelock/ioredis";
import { Cluster, Redis } from "ioredis";

const [target = "", prefix = "", key = "", count = "1"] = process.argv.slice(2);
const client = target.startsWith("cluster:")
  ? new Cluster(
      target
        .slice("cluster:".length)
        .split(",")
        .map((node) => ({ host: node.split(":")[0], port: Number(node.split(":")[1]) })),
    )
  : new Redis(target);
const locker = createLocker({ adapter: ioredisAdapter(client), prefix });
for (let i = 0; i < Number(count); i++) {
  locker.acquire(key, 1_500, { timeout: 60_000 }).catch(() => {});
}
process.stdout.write("waiting\n");
