import { checkFunction, InvalidArgumentError, type Locker, describeValue as show } from "edgelock";

export function checkLocker(locker: unknown): Locker {
  if (typeof (locker as Locker | undefined)?.acquire !== "function") {
    throw new InvalidArgumentError(
      "locker",
      `locker must be a Locker from createLocker(), got ${show(locker)}`,
    );
  }
  return locker as Locker;
}

export function checkOptionalFunction(value: unknown, argument: string): void {
  if (value !== undefined) checkFunction(value, argument);
}

export function checkObject(value: unknown, argument: string): void {
  if (typeof value !== "object" || value === null) {
    throw new InvalidArgumentError(argument, `${argument} must be an object, got ${show(value)}`);
  }
}
