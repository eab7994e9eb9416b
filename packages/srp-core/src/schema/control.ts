/** Protocol errors and orderly shutdown: `error` and `goodbye` (either direction). */
import { Type, type Static } from "@sinclair/typebox";
import { ErrorCodeString, Id, message, Text } from "./primitives.js";

/** Either direction: a protocol error. If the code's table row has a close code, the sender closes next. */
export const ErrorMessage = message(
  "error",
  { code: ErrorCodeString, message: Text, retryable: Type.Boolean(), jobId: Type.Optional(Id) },
  "A coded protocol error; when the code ends the session the sender closes the WebSocket with the code's close code right after.",
);
/** Either direction: a protocol error. */
export type ErrorMessage = Static<typeof ErrorMessage>;

/** Either direction: the sender is about to close the session on purpose. */
export const Goodbye = message(
  "goodbye",
  { reason: Text, reconnectAfterMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 86_400_000 })) },
  "Orderly close: no new jobs will be accepted; in-flight jobs finish or are cancelled; reconnect after the given delay.",
);
/** Either direction: orderly close. */
export type Goodbye = Static<typeof Goodbye>;
