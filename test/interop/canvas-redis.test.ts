// Canvas interop on Redis (broker and results): see canvas-suite.ts.
import { redisDb, requireRedis } from '../helpers/services.js';
import { canvasInteropSuite } from './canvas-suite.js';

canvasInteropSuite({ label: 'redis', broker: () => redisDb(6), backend: () => redisDb(6), check: requireRedis });
