/**
 * The conformance suite over HTTP: the real `@upstash/redis` client → edgelock's gateway → a real
 * redis-server, with the client's default settings and with the other encodings and modes.
 */

import { startGateway } from "edgelock/gateway";
import { upstashAdapter } from "edgelock/upstash";
import { Redis as IORedis } from "ioredis";
import { describeLockContract } from "../contract/lock-contract.js";
import { startRedisServer } from "../support/redis-server.js";
import { type UpstashSettings, upstashClient } from "../support/upstash-client.js";

const TOKEN = "contract-token";

const modes: [string, UpstashSettings][] = [
  ["defaults: base64, auto-pipelining, deserialization", {}],
  [
    "plain encoding, no deserialization",
    { responseEncoding: false, automaticDeserialization: false },
  ],
  ["no auto-pipelining, no client retries", { enableAutoPipelining: false, retry: { retries: 0 } }],
];

for (const [mode, settings] of modes) {
  describeLockContract(`upstash (${mode}) → gateway → redis-server`, async () => {
    const server = await startRedisServer();
    const direct = new IORedis(server.url);
    await direct.script("FLUSH"); // start without cached scripts: exercise the NOSCRIPT fallback
    const gateway = await startGateway({ redis: server.url, tokens: [TOKEN], port: 0 });
    const client = upstashClient(gateway.url, TOKEN, settings);
    return {
      adapter: upstashAdapter(client),
      close: async () => {
        await gateway.close();
        direct.disconnect();
        await server.stop();
      },
    };
  });
}
