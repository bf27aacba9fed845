// Canvas interop on RabbitMQ with results in Redis: see canvas-suite.ts.
import { AMQP_URL, redisDb, requireRabbit, requireRedis } from '../helpers/services.js';
import { canvasInteropSuite } from './canvas-suite.js';

canvasInteropSuite({
  label: 'amqp', broker: () => AMQP_URL, backend: () => redisDb(7),
  check: async () => {
    await requireRabbit();
    await requireRedis();
  },
});
