// The whole text of a Celery event message on Redis (src/protocol/envelope.ts, eventEnvelopeEnds, with
// the events between its ends), as one string: what the Redis broker's RESP bytes must carry.
import type { DeliveryInfo } from '../../src/protocol/envelope.js';
import { eventEnvelopeEnds } from '../../src/protocol/envelope.js';

/** The envelope around `quoted` (events in quoted form): their list when `list`, else quoted[0] alone. */
export function encodeEventEnvelope(quoted: readonly string[], list: boolean, hostname: string, deliveryInfo: DeliveryInfo, deliveryTag?: string): string {
  const [head, tail] = eventEnvelopeEnds(list, hostname, deliveryInfo, deliveryTag);
  return head + (list ? quoted.join(',') : quoted[0]!) + tail;
}
