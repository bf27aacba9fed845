// Chords and saved groups on the Redis result backend, on Celery's keys: the join
// celery-taskset-meta-<gid>.j/.t/.s (chord-part.lua), the header size, and GroupResult.save's
// celery-taskset-meta-<gid>. Values are written in the result serializer, as Celery writes them.
import type { Redis } from 'ioredis';
import { MSGPACK_SERIALIZER, JSON_SERIALIZER } from '../protocol/serializers.js';
import { DecodeError } from '../protocol/errors.js';
import { CHORD_PART_COMMAND, defineScript } from '../brokers/redis/scripts.js';
import type { ChordJoin, ChordPart } from './types.js';
import type { ResultCodec } from './encode.js';

export interface ChordStore {
  client(): Promise<Redis>;
  /** The group key with the backend's global_keyprefix: celery-taskset-meta-<gid><suffix>. */
  groupKey(groupId: string, suffix?: string): string;
  readonly codec: ResultCodec;
  /** result_expires in seconds, 0 for none. */
  expires(): number;
  /** result_chord_ordered (transport option, default true): a sorted set rather than a list. */
  readonly ordered: boolean;
  /** Run with the backend's retry_policy. */
  retry<T>(what: string, fn: () => Promise<T>): Promise<T>;
}

type ChordPartCommand = (n: number, ...a: (string | number | Buffer)[]) => Promise<(number | Buffer | null)[]>;

export class RedisChords {
  constructor(private readonly s: ChordStore) {}

  private encode(value: unknown, tags: boolean): string | Buffer {
    return this.s.codec.serializer.encode(value, { tags });
  }

  /** A value written by Celery or by us, in JSON or msgpack (whichever wrote it). */
  private decode(data: Buffer, what: string): unknown {
    const serializer = data[0] === 0x5b || data[0] === 0x7b ? JSON_SERIALIZER : MSGPACK_SERIALIZER;
    if (!this.s.codec.accept.includes(serializer.contentType)) throw new DecodeError(`${what} is ${serializer.contentType}, which result_accept_content does not accept`);
    try {
      return serializer.decode(data, { tags: this.s.codec.tags });
    } catch (err) {
      throw new DecodeError(`${what} cannot be read: ${(err as Error).message}`);
    }
  }

  async partReturn(groupId: string, part: ChordPart, peerTags = this.s.codec.tags): Promise<ChordJoin | null> {
    const member = this.encode([1, part.taskId, part.state, part.result], peerTags);
    const keys = [this.s.groupKey(groupId, '.j'), this.s.groupKey(groupId, '.t'), this.s.groupKey(groupId, '.s'), this.s.groupKey(groupId)];
    const args = [member, part.index == null ? '+inf' : part.index, this.s.expires(), this.s.ordered ? '1' : '0'];
    const reply = await this.s.retry(`joining chord ${groupId} (task ${part.taskId})`, async () => {
      const c = await this.s.client();
      defineScript(c, 'chord-part');
      return (c as unknown as Record<string, ChordPartCommand>)[CHORD_PART_COMMAND + 'Buffer']!(keys.length, ...keys, ...args);
    });
    if (reply.length < 2) return null;
    const saved = reply[1] instanceof Buffer ? (this.decode(reply[1], `The saved group ${groupId}`) as { result?: unknown }).result ?? null : null;
    const parts = reply.slice(2).map((m) => {
      const v = this.decode(m as Buffer, `An outcome of chord ${groupId}`);
      if (!Array.isArray(v) || v.length < 4) throw new DecodeError(`An outcome of chord ${groupId} is not [1, task_id, state, result]: ${JSON.stringify(v)}`);
      return { taskId: String(v[1]), state: String(v[2]), result: v[3] };
    });
    return { parts, savedGroup: saved };
  }

  async done(groupId: string): Promise<void> {
    const keys = ['.j', '.t', '.s'].map((x) => this.s.groupKey(groupId, x));
    await this.s.retry(`removing the join of chord ${groupId}`, async () => (await this.s.client()).del(...keys));
  }

  /** SET + PUBLISH, as Celery's backend.set writes the chord size and saved groups. */
  private async setAndPublish(key: string, value: string | Buffer, what: string): Promise<void> {
    const expires = this.s.expires();
    await this.s.retry(what, async () => {
      const m = (await this.s.client()).multi();
      if (expires > 0) m.set(key, value, 'EX', expires);
      else m.set(key, value);
      await m.publish(key, value).exec();
    });
  }

  setChordSize(groupId: string, size: number): Promise<void> {
    return this.setAndPublish(this.s.groupKey(groupId, '.s'), String(size), `setting the size of chord ${groupId}`);
  }

  saveGroup(groupId: string, result: unknown): Promise<void> {
    return this.setAndPublish(this.s.groupKey(groupId), this.encode({ result }, this.s.codec.tags), `saving group ${groupId}`);
  }

  async restoreGroup(groupId: string): Promise<unknown> {
    const raw = await this.s.retry(`reading group ${groupId}`, async () => (await this.s.client()).getBuffer(this.s.groupKey(groupId)));
    return raw ? ((this.decode(raw, `The saved group ${groupId}`) as { result?: unknown }).result ?? null) : null;
  }

  async deleteGroup(groupId: string): Promise<void> {
    await this.s.retry(`deleting group ${groupId}`, async () => (await this.s.client()).del(this.s.groupKey(groupId)));
  }
}
