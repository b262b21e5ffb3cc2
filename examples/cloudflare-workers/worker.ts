/**
 * A minimal Worker: one request at a time per `?key=` within this isolate, using only
 * web-standard APIs. With the in-memory backend the lock is per isolate; a Redis transport over
 * HTTP makes it global.
 */

import { createLocker } from "edgelock";
import { memoryAdapter } from "edgelock/memory";

const locker = createLocker({ adapter: memoryAdapter() });

/** The Worker's fetch handler. Workers load a module's default export. */
const worker = {
  async fetch(request: Request): Promise<Response> {
    const key = new URL(request.url).searchParams.get("key") ?? "default";
    const lease = await locker.tryAcquire(key, 5_000);
    if (!lease) return new Response("busy\n", { status: 409 });
    try {
      return new Response(`fence ${lease.fence}\n`);
    } finally {
      await lease.release();
    }
  },
};

export default worker;
