import { memoryAdapter } from "edgelock/memory";
import { describeLockContract } from "./lock-contract.js";

describeLockContract("memory", async () => ({ adapter: memoryAdapter(), close: async () => {} }));
