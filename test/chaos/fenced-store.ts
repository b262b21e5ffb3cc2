/**
 * The fenced store: the protected resource of the chaos suite, living in the harness process
 * (clients reach it over IPC, never through the fault proxy). Each resource holds two counters:
 *
 * - `value`, fenced: every request carries the lease's fence, and the store rejects any request
 *   (read or write) whose fence is below the highest fence it has seen for the resource, and a
 *   write unless its fence is strictly above the last accepted write's (one write per lease).
 *   Checking reads too is what makes a read-modify-write safe: once a newer holder has read, the
 *   older holder's write is stale even if it arrives first.
 * - `plain`, unfenced: written whatever the fence, as a resource without fencing would be, by
 *   clients that have not been told their lease is lost. Its lost updates measure the lock's
 *   mutual exclusion alone.
 *
 * Every decision goes into the history (`read` / `write`, `ok` = accepted, `fail` = stale).
 */

import { type History, monotonicMs } from "./history.js";
import type { StoreReply, StoreRequest } from "./protocol.js";

interface Resource {
  value: number;
  plain: number;
  /** The highest fence any accepted request has carried. */
  highest: number;
  /** The fence of the last accepted write. */
  lastWrite: number;
}

/** The store; one per chaos run. */
export class FencedStore {
  readonly #resources = new Map<string, Resource>();

  constructor(readonly history: History) {}

  /** Handles a request from client process `p` and records the decision. */
  handle(p: number, request: StoreRequest): StoreReply {
    const resource = this.#get(request.resource);
    const accepted =
      request.fence >= resource.highest &&
      (request.op === "read" || request.fence > resource.lastWrite);
    if (accepted) {
      resource.highest = request.fence;
      if (request.op === "write") {
        resource.value = request.value;
        resource.lastWrite = request.fence;
      }
    }
    // The unfenced counter takes every write, as a resource without fencing would.
    const plain = request.op === "write" ? request.plain : undefined;
    if (plain !== undefined) resource.plain = plain;
    this.history.record({
      t: monotonicMs(),
      p,
      op: request.op,
      type: accepted ? "ok" : "fail",
      key: request.resource,
      fence: request.fence,
      value: request.op === "write" ? request.value : resource.value,
      ...(request.op === "read" ? { plain: resource.plain } : plain === undefined ? {} : { plain }),
    });
    return { accepted, value: resource.value, plain: resource.plain };
  }

  /** The final counters of `name`. */
  final(name: string): { value: number; plain: number } {
    const { value, plain } = this.#get(name);
    return { value, plain };
  }

  #get(name: string): Resource {
    let resource = this.#resources.get(name);
    if (!resource) {
      resource = { value: 0, plain: 0, highest: 0, lastWrite: 0 };
      this.#resources.set(name, resource);
    }
    return resource;
  }
}
