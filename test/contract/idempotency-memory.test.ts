import { memoryAdapter } from "edgelock/memory";
import { describeIdempotencyContract } from "./idempotency-contract.js";

describeIdempotencyContract("memory", async () => ({
  adapter: memoryAdapter(),
  close: async () => {},
}));
