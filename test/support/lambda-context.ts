/**
 * A Lambda context as the Node.js runtime builds it: its remaining time counts down from the
 * invocation's timeout, on the wall clock, as `Lambda-Runtime-Deadline-Ms` makes it.
 */

import type { Context } from "aws-lambda";

/**
 * A context for one invocation of `functionName` with `timeout` ms left at creation.
 *
 * @example
 * ```ts
 * await handler(event, lambdaContext(3_000)); // a 3 s Lambda, just invoked
 * ```
 */
export function lambdaContext(timeout: number, functionName = "orders"): Context {
  const deadline = Date.now() + timeout;
  const requestId = crypto.randomUUID();
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:eu-west-1:123456789012:function:${functionName}`,
    memoryLimitInMB: "256",
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `2025/01/01/[$LATEST]${requestId.replaceAll("-", "")}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    // The callback-era methods: nothing edgelock does may call them.
    done: () => {
      throw new Error("legacy context.done() called");
    },
    fail: () => {
      throw new Error("legacy context.fail() called");
    },
    succeed: () => {
      throw new Error("legacy context.succeed() called");
    },
  };
}
