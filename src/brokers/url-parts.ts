// Pieces of broker URL parsing shared by every transport.

/** Percent-decode a URL part (user, password, vhost); a malformed escape is kept as written. */
export function decodeUrlPart(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
