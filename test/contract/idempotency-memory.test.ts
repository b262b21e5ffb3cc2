import { memoryAdapter } from "edgelock/memory";
import { describeIdempotencyContract } from "./idempotency-contract.js";
import { describeIdempotencyMatrix } from "./idempotency-matrix.js";

const memory = async () => ({ adapter: memoryAdapter(), close: async () => {} });

describeIdempotencyContract("memory", memory);
describeIdempotencyMatrix("memory", memory);
