import { show } from '../parallel-worker.messages';
import { redactSecrets } from '../redact-secrets';

/** An error as it travels (IPC) and is stored: text only. */
export interface WireError {
  message: string;
  stack?: string;
}

/** Longest message and stack kept of an error: enough to read, bounded for IPC, the store and the logs. */
export const MESSAGE_MAX = 8_000;
export const STACK_MAX = 16_000;

/**
 * `text` with its secrets masked, read no further than `max` characters and a
 * margin (a URL cut by the limit is still masked whole), so a huge message
 * costs no more than a long one.
 */
const redacted = (text: string, max: number): string =>
  text.length > max + 2_000
    ? `${redactSecrets(text.slice(0, max + 2_000))}${text.slice(max + 2_000)}`
    : redactSecrets(text);

/** `text` cut to at most `max` characters, saying how much was left out (so cutting it again changes nothing). */
const capped = (text: string, max: number): string =>
  text.length > max
    ? `${text.slice(0, max - 40)}… (${(text.length - max + 40).toLocaleString('en')} more characters)`
    : text;

/** A property read that cannot throw (a getter, a Proxy trap). */
function read(value: unknown, key: string): unknown {
  try {
    return (value as Record<string, unknown>)[key];
  } catch {
    return undefined;
  }
}

/** Any value as text, never throwing: a string as is, anything else as `util.inspect` shows it. */
function text(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    return show(value);
  } catch {
    return 'a value that cannot be shown';
  }
}

/**
 * What a handler or loader threw, as text that can travel and be stored:
 * never throws, whatever was thrown (null, a Symbol, an object with no
 * prototype, getters that throw, a huge string), cut to a bounded length
 * and with secrets masked.
 */
export function toWireError(thrown: unknown): WireError {
  const errorLike =
    thrown instanceof Error ||
    (typeof thrown === 'object' &&
      thrown !== null &&
      typeof read(thrown, 'message') === 'string');
  if (!errorLike)
    return {
      message: capped(
        redacted(
          typeof thrown === 'string'
            ? thrown
            : `${text(thrown)} (thrown, not an Error)`,
          MESSAGE_MAX,
        ),
        MESSAGE_MAX,
      ),
    };
  const message = read(thrown, 'message');
  const name = read(thrown, 'name');
  const stack = read(thrown, 'stack');
  return {
    message: capped(
      redacted(
        (message !== undefined && text(message)) ||
          (typeof name === 'string' && name) ||
          'an Error with no message',
        MESSAGE_MAX,
      ),
      MESSAGE_MAX,
    ),
    ...(stack !== undefined && {
      stack: capped(redacted(text(stack), STACK_MAX), STACK_MAX),
    }),
  };
}

/** An error as a worker sent it, coerced to text again on receipt (a worker of another version, a bug). */
export function receivedError(error: unknown): WireError {
  if (typeof error !== 'object' || error === null)
    return {
      message: capped(`a malformed error: ${text(error)}`, MESSAGE_MAX),
    };
  const { message, stack } = error as Record<string, unknown>;
  return {
    message: capped(text(message ?? 'an error with no message'), MESSAGE_MAX),
    ...(stack !== undefined &&
      stack !== null && { stack: capped(text(stack), STACK_MAX) }),
  };
}
