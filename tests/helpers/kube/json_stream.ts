/** Reading what `kubectl get --watch -o json` prints: JSON objects back to back. */
export { jsonObjects } from "../../../src/sandbox/json_stream.ts";
