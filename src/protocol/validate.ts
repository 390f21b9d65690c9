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

/**
 * Parses `text` as a JSON object (an empty body counts as `{}` when `emptyIsObject`); `what`
 * names the request in messages.
 * @throws {BadRequestError} saying what is wrong with it.
 */
export function parseJsonObject(
  text: string,
  options: { emptyIsObject?: boolean; what?: string } = {},
): Record<string, unknown> {
  if (options.emptyIsObject && text.trim() === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const reason = (error as Error).message;
    throw new BadRequestError(
      options.what
        ? `Invalid ${options.what}: body is not JSON: ${reason}`
        : `Invalid JSON body: ${reason}`,
    );
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new BadRequestError(
      options.what
        ? `Invalid ${options.what}: body must be a JSON object`
        : "Invalid JSON body: expected an object",
    );
  }
  return value as Record<string, unknown>;
}
