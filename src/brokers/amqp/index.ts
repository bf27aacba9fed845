// amqp://, amqps://, pyamqp:// → the RabbitMQ broker (see docs/amqp.md).
import type { Broker, BrokerContext } from '../types.js';
import { AmqpBroker } from './broker.js';

export { AmqpBroker } from './broker.js';
export { BrokerConnectionError, PublishError } from './errors.js';
export { parseAmqpUrl } from './url.js';

export function createBroker(url: string, ctx: BrokerContext): Broker {
  return new AmqpBroker(url, ctx);
}
