// The four transports a contract test runs on alike: memory, SQLite (a fresh file), Redis and RabbitMQ.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AMQP_URL, redisDb, requireRabbit, requireRedis } from './services.js';

export interface Transport {
  name: 'memory' | 'sqlite' | 'redis' | 'amqp';
  url: () => string;
  check: () => Promise<void>;
}

/** `label` names the memory transport and the SQLite file's folder; `db` is the Redis database the tests own. */
export function allTransports(label: string, db: number): Transport[] {
  let sqlite: string | undefined;
  return [
    { name: 'memory', url: () => `memory://${label}-${process.pid}`, check: async () => undefined },
    { name: 'sqlite', url: () => (sqlite ??= `sqlite:///${path.join(mkdtempSync(path.join(tmpdir(), `celeriac-${label}-`)), 'q.db')}`), check: async () => undefined },
    { name: 'redis', url: () => redisDb(db), check: requireRedis },
    { name: 'amqp', url: () => AMQP_URL, check: requireRabbit },
  ];
}
