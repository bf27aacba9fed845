// Errors raised while decoding messages. They carry Celery's names so logs read the same.

export class ContentDisallowed extends Error {
  override name = 'ContentDisallowed';
}

/** The message is not a valid task message (Celery's InvalidTaskError). */
export class InvalidTaskError extends Error {
  override name = 'InvalidTaskError';
}

/** The raw bytes could not be decoded at all (bad JSON, bad base64, unknown compression). */
export class DecodeError extends Error {
  override name = 'DecodeError';
}

/**
 * A value the serializer cannot write (kombu.exceptions.EncodeError): a circular object, an invalid
 * Date, a throwing toJSON, nesting deeper than the stack. Permanent: retrying cannot help.
 */
export class EncodeError extends Error {
  override name = 'EncodeError';
  readonly permanent = true;

  /** The cause as Python's repr of an exception, for exc_message: TypeError('...'). */
  get causeRepr(): string {
    const c = this.cause;
    const name = c instanceof Error ? c.name || 'Error' : 'TypeError';
    const text = c instanceof Error ? c.message : this.message;
    return `${name}(${pyQuote(text)})`;
  }
}

/** Python's repr of a str (enough for error messages: quotes and backslashes). */
function pyQuote(s: string): string {
  const q = s.includes("'") && !s.includes('"') ? '"' : "'";
  return q + s.replace(/\\/g, '\\\\').replace(new RegExp(q, 'g'), '\\' + q).replace(/\n/g, '\\n') + q;
}

/** Wrap what a serializer threw as an EncodeError (an EncodeError passes through). */
export function toEncodeError(err: unknown): EncodeError {
  if (err instanceof EncodeError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new EncodeError(message, { cause: err });
}
