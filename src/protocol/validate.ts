/**
 * Validation of wire payloads with zod, turning failures into one readable BadRequestError. It
 * takes zod's classic schemas and its mini ones (the rocklet's, which start faster) alike, and
 * words issues in English either way (mini loads no locale by itself).
 */
import { type core, safeParse } from "zod/mini";
import en from "zod/v4/locales/en.js";
import { BadRequestError } from "../common/errors.ts";

/** zod's English messages ("Invalid input: expected string, received number"). */
const ENGLISH = en().localeError;

/** Formats zod issues as `field "a.b": reason; field "c": reason`. */
export function describeIssues(issues: readonly core.$ZodIssue[]): string {
  return issues.map((issue) => {
    const where = issue.path.length > 0 ? `field "${issue.path.join(".")}"` : "body";
    return `${where}: ${issue.message}`;
  }).join("; ");
}

/**
 * Parses `value` with `schema`.
 * @throws {BadRequestError} naming every invalid field, with `what` as the action that failed.
 */
export function parseWire<S extends core.$ZodType>(
  schema: S,
  value: unknown,
  what: string,
): core.output<S> {
  const result = safeParse(schema, value, { error: ENGLISH });
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
