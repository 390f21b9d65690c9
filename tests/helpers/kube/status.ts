/**
 * Kubernetes `Status` objects for failed requests, shaped as the real API server sends them so
 * kubectl prints its usual messages (`Error from server (NotFound): pods "x" not found`).
 */

/** A `metav1.Status` failure. */
export interface StatusBody {
  kind: "Status";
  apiVersion: "v1";
  metadata: Record<string, never>;
  status: "Failure";
  message: string;
  reason: string;
  details?: {
    name?: string;
    kind?: string;
    causes?: { reason: string; message: string; field: string }[];
  };
  code: number;
}

/** A request the API refuses; the server answers `status` with `body`. */
export class ApiError extends Error {
  /** Creates the error from a Status body. */
  constructor(readonly body: StatusBody) {
    super(body.message);
  }
  /** HTTP status code. */
  get code(): number {
    return this.body.code;
  }
}

/** The Status body of a failure. */
function status(
  code: number,
  reason: string,
  message: string,
  details?: StatusBody["details"],
): ApiError {
  const body: StatusBody = {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    code,
  };
  if (details) body.details = details;
  return new ApiError(body);
}

/** 404 `pods "x" not found`. */
export function notFound(resource: string, name: string): ApiError {
  return status(404, "NotFound", `${resource} "${name}" not found`, { name, kind: resource });
}

/** 409 `pods "x" already exists`. */
export function alreadyExists(resource: string, name: string): ApiError {
  return status(409, "AlreadyExists", `${resource} "${name}" already exists`, {
    name,
    kind: resource,
  });
}

/** 409 Conflict for a stale resourceVersion (or failed precondition). */
export function conflict(resource: string, name: string, why?: string): ApiError {
  const message = `Operation cannot be fulfilled on ${resource} "${name}": ${
    why ??
      "the object has been modified; please apply your changes to the latest version and try again"
  }`;
  return status(409, "Conflict", message, { name, kind: resource });
}

/** 422 Invalid: `Pod "x" is invalid: spec.containers: Required value`. */
export function invalid(kind: string, name: string, field: string, message: string): ApiError {
  return status(422, "Invalid", `${kind} "${name}" is invalid: ${field}: ${message}`, {
    name,
    kind,
    causes: [{ reason: "FieldValueInvalid", message, field }],
  });
}

/** 400 BadRequest. */
export function badRequest(message: string): ApiError {
  return status(400, "BadRequest", message);
}

/** 404 for a path the server does not serve. */
export function pathNotFound(path: string): ApiError {
  return status(404, "NotFound", `the server could not find the requested resource (${path})`);
}

/** 405 for a verb a resource does not support. */
export function methodNotAllowed(method: string, path: string): ApiError {
  return status(
    405,
    "MethodNotAllowed",
    `the server does not allow this method on the requested resource (${method} ${path})`,
  );
}

/** 415 for a patch type the server does not support. */
export function unsupportedMediaType(type: string): ApiError {
  return status(
    415,
    "UnsupportedMediaType",
    `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got "${type}")`,
  );
}

/** 410 Gone for a watch from a resourceVersion older than the history kept. */
export function gone(resourceVersion: string): ApiError {
  return status(410, "Expired", `too old resource version: ${resourceVersion}`);
}

/** 503 ServiceUnavailable (the pod proxy cannot reach the pod). */
export function unavailable(message: string): ApiError {
  return status(503, "ServiceUnavailable", message);
}
