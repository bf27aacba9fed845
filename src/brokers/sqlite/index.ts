// sqlite:// — the embedded broker (see docs/embedded.md).
import type { Broker, BrokerContext } from '../types.js';
import { createSqliteBroker } from './broker.js';

export { SqliteBroker, DEFAULT_LEASE_SECONDS } from './broker.js';
export { parseSqliteUrl } from './url.js';

export function createBroker(url: string, ctx: BrokerContext): Broker {
  return createSqliteBroker(url, ctx);
}
