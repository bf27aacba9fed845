// Remote-control replies on Redis, as kombu's Mailbox does it: the client binds its reply queue
// `<routing key>.<exchange>` to the reply exchange and pops it; a worker's reply is a publish to that
// exchange (routed through _kombu.binding.<exchange>).
import type { Redis } from 'ioredis';
import type { BroadcastSubscription } from '../types.js';
import type { Logger } from '../../app/log.js';
import type { Message } from '../../protocol/message.js';
import { decodeEnvelope } from '../../protocol/envelope.js';
import type { KeyLayout } from './keys.js';

/** Bind the reply queue, then hand each reply to `handler` until closed. */
export async function subscribeReplies(
  client: Redis, newBlockingClient: () => Promise<Redis>, keys: KeyLayout, logger: Logger,
  exchange: string, routingKey: string, handler: (message: Message) => void,
): Promise<BroadcastSubscription> {
  const queue = `${routingKey}.${exchange}`;
  const member = keys.bindingMember(routingKey, queue);
  await client.sadd(keys.bindingKey(exchange), member);
  const blocking = await newBlockingClient();
  let open = true;
  const loop = (async () => {
    while (open) {
      let popped: [string, string] | null;
      try {
        popped = await blocking.brpop(keys.queueKey(queue), 0.5);
      } catch (err) {
        if (open) logger.warning(`Remote-control replies on ${queue}: ${(err as Error).message}`);
        break;
      }
      if (!popped) continue;
      try {
        handler(decodeEnvelope(popped[1]).message);
      } catch (err) {
        logger.warning(`Remote-control reply on ${queue} could not be read: ${(err as Error).message}`);
      }
    }
  })();
  return {
    close: async () => {
      open = false;
      await loop;
      blocking.disconnect();
      await client.multi().srem(keys.bindingKey(exchange), member).del(keys.queueKey(queue)).exec().catch(() => undefined);
    },
  };
}
