// A connected ioredis client for the Node children (BullMQ in ESM wants one that is already ready).
import { Redis } from 'ioredis';

export async function readyRedis(url: string): Promise<Redis> {
  const client = new Redis(url, { maxRetriesPerRequest: null, lazyConnect: true });
  await client.connect();
  return client;
}
