/** Validation of wire payloads with zod, turning failures into one readable BadRequestError. */
import { z } from "zod";
import { BadRequestError } from "../common/errors.ts";

/** Formats zod issues as `field "a.b": reason; field "c": reason`. */
export function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues.map((issue) => {
    const where = issue.path.length > 0 ? `field "${issue.path.join(".")}"` : "body";
    return `${where}: ${issue.message}`;
  }).join("; ");
}

/**
 * Parses `value` with `schema`.
 * @throws {BadRequestError} naming every invalid field, with `what` as the action that failed.
 */
export function parseWire<S extends z.ZodType>(
  schema: S,
  value: unknown,
  what: string,
): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) {
    throw new BadRequestError(`Invalid ${what}: ${describeIssues(result.error.issues)}`, {
      extraInfo: { issues: result.error.issues.map((i) => ({ loc: i.path, msg: i.message })) },
    });
  }
  return result.data;
}
