// ISO-8601 timestamps as Celery writes them (eta, expires): naive means UTC.
import { InvalidTaskError } from './errors.js';

/** Parse an ISO-8601 timestamp as Celery does: naive means UTC. */
export function parseIsoDate(s: string): Date {
  let text = s.trim().replace(' ', 'T');
  // Trim sub-millisecond digits, which Date cannot hold.
  text = text.replace(/(\.\d{3})\d+/, '$1');
  if (/T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(text)) text += 'Z';
  const d = new Date(text);
  if (Number.isNaN(d.getTime())) throw new InvalidTaskError(`Invalid ISO-8601 timestamp ${JSON.stringify(s)}`);
  return d;
}
