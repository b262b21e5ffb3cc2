/**
 * The real `@upstash/redis` client, built with the settings a test wants to vary.
 */

import { Redis } from "@upstash/redis";

/** The client settings the REST tests vary (the rest stay at the client's defaults). */
export interface UpstashSettings {
  responseEncoding?: false | "base64";
  automaticDeserialization?: boolean;
  enableAutoPipelining?: boolean;
  retry?: { retries: number };
}

/** A new `@upstash/redis` client for `url` and `token` with `settings` over its defaults. */
export function upstashClient(url: string, token: string, settings: UpstashSettings = {}): Redis {
  return new Redis({ url, token, ...settings });
}
