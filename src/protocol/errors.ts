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
