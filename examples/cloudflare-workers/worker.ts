/**
 * A Cloudflare Worker: a Hono app whose routes run once per idempotency key and one at a time
 * per lock key, over Upstash Redis (or any server speaking its REST protocol, such as
 * `edgelock/gateway`). Locks are released before the response goes out (so a lock found lost
 * can still change it); replayable responses are stored through the Worker's `ctx.waitUntil`,
 * after the response has gone out.
 *
 * - `POST /orders` (header `Idempotency-Key`, required): places an order. A retry with the same
 *   key gets the first response back, byte for byte, with `Idempotent-Replayed: true`; a retry
 *   while the first is still running gets 409 with `Retry-After`.
 * - `POST /reports/:name/rebuild`: rebuilds a report under the lock `report:<name>`; a request
 *   while another holds it gets 409 with `Retry-After` from the holder's remaining lease.
 *
 * Bindings (secrets): `UPSTASH_REDIS_REST_URL`, `UPSTASH_REDIS_REST_TOKEN`. See README.md.
 */

import { Redis } from "@upstash/redis/cloudflare";
import { createLocker } from "edgelock";
import { type IdempotencyVariables, idempotency, type LockVariables, lock } from "edgelock/hono";
import { upstashAdapter } from "edgelock/upstash";
import { type Env, Hono, type MiddlewareHandler } from "hono";

/** The Worker's bindings (wrangler.toml, `wrangler secret put`, or `.dev.vars` locally). */
export interface Bindings {
  UPSTASH_REDIS_REST_URL: string;
  UPSTASH_REDIS_REST_TOKEN: string;
}

type AppEnv = { Bindings: Bindings; Variables: LockVariables & IdempotencyVariables };

/** How long the simulated work takes, in ms: a payment provider's call, a report's queries. */
const WORK_MS = 300;
const work = () => new Promise((resolve) => setTimeout(resolve, WORK_MS));

/** What the routes share, built once per isolate from the bindings on its first request. */
interface Services {
  redis: Redis;
  orderIdempotency: MiddlewareHandler<AppEnv>;
  reportLock: MiddlewareHandler<AppEnv>;
}

let services: Services | undefined;

function servicesFor(env: Bindings): Services {
  if (services) return services;
  const redis = Redis.fromEnv(env);
  const adapter = upstashAdapter(redis);
  const locker = createLocker({ adapter, prefix: "example" });
  services = {
    redis,
    orderIdempotency: idempotency<AppEnv>({
      adapter,
      prefix: "example:idem",
      required: true,
      // Whose key it is: in a real app the authenticated account, so two customers' keys never meet.
      getScope: (c) => c.req.header("X-Customer-Id"),
    }),
    reportLock: lock<AppEnv>({
      locker,
      key: (c) => `report:${c.req.param("name")}`,
      ttl: 10_000, // renewed every ~3 s while the rebuild runs
    }),
  };
  return services;
}

/** Runs the middleware that `pick` chooses from this isolate's services. */
const use =
  <E extends Env & { Bindings: Bindings }>(
    pick: (services: Services) => MiddlewareHandler<E>,
  ): MiddlewareHandler<E> =>
  (c, next) =>
    pick(servicesFor(c.env))(c, next);

export const app = new Hono<AppEnv>();

app.post(
  "/orders",
  use((s) => s.orderIdempotency),
  async (c) => {
    const { redis } = servicesFor(c.env);
    const order = await c.req.json<{ item: string; quantity: number }>();
    await redis.incr("example:orders:runs"); // counts real executions (replays do not run this)
    await work(); // charge the card, reserve the stock...
    const id = crypto.randomUUID();
    return c.json({ id, ...order, status: "placed" }, 201, { Location: `/orders/${id}` });
  },
);

app.post(
  "/reports/:name/rebuild",
  use((s) => s.reportLock),
  async (c) => {
    const { redis } = servicesFor(c.env);
    const name = c.req.param("name");
    const { fence } = c.var.lease; // increases with every grant: stamp it on what you write
    const runs = await redis.incr(`example:reports:${name}:runs`);
    await work();
    await redis.set(`example:reports:${name}`, JSON.stringify({ rebuiltBy: fence }));
    return c.json({ report: name, fence, runs });
  },
);

/** Workers load the module's default export: the app has the `fetch(request, env, ctx)` they call. */
export default app;
