// The brokers a worker test runs on: the same test, once on Redis and once on RabbitMQ.
import { AMQP_URL, redisDb, requireRabbit, requireRedis } from './services.js';

export interface TestBroker {
  name: 'redis' | 'amqp';
  url: string;
  check: () => Promise<void>;
}

export const WORKER_TEST_BROKERS: TestBroker[] = [
  { name: 'redis', url: redisDb(10), check: requireRedis },
  { name: 'amqp', url: AMQP_URL, check: requireRabbit },
];
