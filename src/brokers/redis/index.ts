import type { Broker, BrokerContext } from '../types.js';
import { RedisBroker } from './broker.js';

export { RedisBroker } from './broker.js';
export { InconsistencyError } from './restore.js';

export function createBroker(url: string, ctx: BrokerContext): Broker {
  return new RedisBroker(url, ctx);
}
