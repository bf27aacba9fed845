// Fetching from kombu's queue lists without a loss window, holding deliveries, acking, restoring.
// Over 400 lines because it is one state machine: credit, fetches in flight, messages handed out early
// and ack batches written on the fetch connection are read and changed by every method here; restores
// (restore.ts) and the shared credit (../qos.ts) live apart.
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Consumer, Delivery, DeliveryHandler } from '../types.js';
import type { Logger } from '../../app/log.js';
import { decodeEnvelope, markRedelivered, type Envelope } from '../../protocol/envelope.js';
import type { Message } from '../../protocol/message.js';
import type { KeyLayout } from './keys.js';
import { scriptsFor, type ScriptClient } from './scripts.js';
import { Restorer } from './restore.js';
import { explainRedisError } from './acl.js';
import { QoS } from '../qos.js';
import { ConsumerRetries, type RetrySettings } from '../connection-retry.js';

const BATCH_MAX = 200;
/** Below this many messages a quarter of prefetch is too small a fetch (see credit()). */
const SMALL_BATCH = 64;
/** Fetches sent ahead of their replies (each has its own slot in the fetch log). */
const MAX_FETCHES_IN_FLIGHT = 2;

export interface ConsumerDeps {
  client: Redis;
  scripts: ScriptClient;
  /** Creates a fresh connection for blocking reads (called again after a wedge). */
  newBlockingClient: () => Promise<Redis>;
  keys: KeyLayout;
  logger: Logger;
  visibilityTimeout: number;
  /** broker_connection_retry / broker_connection_max_retries. */
  retry: Partial<RetrySettings>;
  /** The broker URL without its password (for the give-up line). */
  displayUrl: string;
  /** The ACL user of the URL, named in NOPERM explanations. */
  user: string;
  /** Told once when the consumer gives up (ConsumeOptions.onFailure). */
  onFailure?: (err: Error) => void;
}

class RedisDelivery implements Delivery {
  settled = false;
  /** Set while a message handed out straight from a blocking move is not yet in the unacked hash. */
  registered: Promise<void> | null = null;
  constructor(
    private readonly consumer: RedisConsumer,
    readonly envelope: Envelope,
    readonly queue: string,
    readonly sourceKey: string,
  ) {}
  get message(): Message { return this.envelope.message; }
  get exchange(): string { return this.envelope.deliveryInfo.exchange; }
  get routingKey(): string { return this.envelope.deliveryInfo.routing_key; }
  get deliveryTag(): string { return this.envelope.deliveryTag; }
  get redelivered(): boolean { return this.envelope.deliveryInfo.redelivered === true; }
  ack(): Promise<void> { return this.consumer.settle(this, 'ack'); }
  reject(requeue: boolean): Promise<void> { return this.consumer.settle(this, requeue ? 'requeue' : 'ack'); }
}

export class RedisConsumer implements Consumer {
  readonly id = randomUUID();
  /** Held deliveries by tag, the prefetch window and the held ETA messages (shared with every transport). */
  private readonly qos: QoS<string, RedisDelivery>;
  private running = true;
  private loopDone: Promise<void> = Promise.resolve();
  private creditWaiter: (() => void) | null = null;
  private blocking: Redis | null = null;
  private inBlockingWait = false;
  private fetchSeq = 0;
  private readonly dirtySources = new Set<string>();
  private rotation = 0;
  private ackBatch: { tags: string[]; promise: Promise<void> } | null = null;
  private sweepTimer: NodeJS.Timeout | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private readonly renewMs: number;
  readonly sweepMs: number;
  private readonly restorer: Restorer;
  private readonly retries: ConsumerRetries;
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly deps: ConsumerDeps,
    private readonly queues: string[],
    private readonly handler: DeliveryHandler,
    prefetch: number,
  ) {
    this.qos = new QoS(prefetch);
    this.restorer = new Restorer(deps);
    this.retries = new ConsumerRetries({ settings: deps.retry, where: deps.displayUrl, logger: deps.logger, onFailure: deps.onFailure, stop: () => this.giveUp() });
    // Renew held messages well inside the visibility timeout; kombu only restores entries older than it.
    this.renewMs = Math.max(200, Math.min(10_000, (deps.visibilityTimeout * 1000) / 3));
    // How often we look for stale entries: a dead worker's messages come back within vt + sweepMs.
    this.sweepMs = Math.max(1000, Math.min(60_000, (deps.visibilityTimeout * 1000) / 2));
  }

  get renewIntervalMs(): number {
    return this.renewMs;
  }

  async start(): Promise<void> {
    // Open the blocking connection now, so a refused connection (or max_connections) fails start().
    this.blocking = this.watch(await this.deps.newBlockingClient());
    this.watch(this.deps.client, true);
    try {
      await this.renew();
    } catch (err) {
      this.blocking.disconnect();
      this.blocking = null;
      this.unwatchShared?.();
      throw new Error(`Cannot consume from ${this.deps.displayUrl}: ${await this.explain(err)}`);
    }
    await this.restoreVisible().catch(async (err) => this.deps.logger.warning(`Restore of unacknowledged messages failed: ${await this.explain(err)}`));
    // Renewal runs until close(): tasks still running during a warm shutdown stay claimed.
    this.renewTimer = setInterval(() => void this.renew().catch(async (err) => this.deps.logger.debug(`consumer: renewing held messages failed: ${await this.explain(err)}`)), this.renewMs);
    this.sweepTimer = setInterval(() => void this.restoreVisible().catch(async (err) => this.deps.logger.warning(`Restore of unacknowledged messages failed: ${await this.explain(err)}`)), this.sweepMs);
    this.renewTimer.unref();
    this.sweepTimer.unref();
    this.loopDone = this.loop();
  }

  setPrefetch(n: number): void {
    this.qos.setPrefetch(n);
    this.wakeCredit();
  }

  setEtaHeld(n: number): void {
    this.qos.setEtaHeld(n);
    this.wakeCredit();
  }

  private credit(): number {
    const { qos } = this;
    if (qos.prefetch === 0) return BATCH_MAX;
    // Held ETA messages raise the limit, not the fetch size: the quarter below follows the window.
    const free = qos.free(this.requested);
    // Fetch once a quarter of prefetch is free: one batch being run, two fetches on their way and
    // one batch whose acks are being written keep Redis and this process busy at once. Below
    // SMALL_BATCH a fetch takes all that is free, since a round trip per few messages would cost
    // more than the overlap gains.
    const quarter = Math.min(BATCH_MAX, Math.max(1, Math.floor(qos.prefetch / 4)));
    if (free < quarter) return 0;
    return quarter >= SMALL_BATCH ? quarter : Math.min(BATCH_MAX, free);
  }

  private wakeCredit(): void {
    const w = this.creditWaiter;
    this.creditWaiter = null;
    w?.();
  }

  private fetchClient: Redis | null = null;
  private fetchScriptClient: ScriptClient | null = null;

  private fetchScripts(): ScriptClient {
    const client = this.blocking;
    if (!client) return this.deps.scripts;
    if (this.fetchClient !== client) {
      this.fetchClient = client;
      this.fetchScriptClient = scriptsFor(client);
    }
    return this.fetchScriptClient!;
  }

  private fetchKeys(): string[] {
    // Priority outer, queue inner, rotating the queue order for fairness (kombu's round robin).
    const n = this.queues.length;
    const start = this.rotation++ % n;
    const order = [...this.queues.slice(start), ...this.queues.slice(0, start)];
    const keys: string[] = [];
    for (const step of this.deps.keys.steps) for (const q of order) keys.push(this.deps.keys.queueKey(q, step));
    return keys;
  }

  private async loop(): Promise<void> {
    let backoff = 0;
    while (this.running || this.fetches.length > 0) {
      try {
        if (this.running) this.topUp();
        const fetch = this.fetches[0];
        if (!fetch) {
          // No credit: wait for acks to free some.
          await new Promise<void>((r) => (this.creditWaiter = r));
          continue;
        }
        let reply: FetchReply;
        try {
          reply = await fetch.reply;
        } finally {
          this.fetches.shift();
          this.requested -= fetch.credit;
        }
        this.dirtySources.delete(fetch.source);
        const count = replyCount(reply);
        this.lastFull = count > 0 && count >= fetch.credit;
        const ready = count > 0 ? this.accept(reply) : [];
        // Empty the reply: ioredis's command promise still holds this array, and such promises keep
        // their values alive through the next young-generation collection (see docs/benchmarks.md).
        // Emptied, its payload strings go at once: a third fewer bytes promoted during a drain.
        reply.length = 0;
        // An early message from this source that the fetch did not return left the inflight list
        // some other way (recovered to its queue): its ack goes ahead and finds nothing to remove.
        if (this.unregistered.size > 0) {
          for (const tag of [...this.unregistered.keys()]) if (this.qos.held.get(tag)?.sourceKey === fetch.source) this.markRegistered(tag);
        }
        if (count > 0) {
          backoff = 0;
          this.retries.succeeded();
          // The batch is held (counted against prefetch) now, and handed to the handler once this
          // loop has sent the next fetch: Redis prepares that batch while this process runs this one.
          if (ready.length > 0) queueMicrotask(() => this.handOut(ready));
          continue;
        }
        if (this.fetches.length > 0 || this.dirtySources.size > 0 || !this.running || fetch.credit <= 0) continue;
        if (!(await this.blockForMessage())) continue;
        // A fetch that brought messages, or a completed blocking wait: the attempts start over.
        backoff = 0;
        this.retries.succeeded();
      } catch (err) {
        if (!this.running) break;
        backoff = Math.min(5000, backoff ? backoff * 2 : 100);
        if (await this.attemptFailed(err, backoff)) break;
        await sleep(backoff);
      }
    }
    // Fetches still on their way after a failure: their batches stay in unacked (visibility timeout).
    for (const f of this.fetches.splice(0)) f.reply.catch(() => undefined);
  }

  /** Fetches sent and not yet answered, oldest first (replies come back in this order). */
  private readonly fetches: { reply: Promise<FetchReply>; credit: number; source: string }[] = [];
  /** Messages the fetches in flight may return: counted against prefetch like held ones. */
  private requested = 0;
  /** Whether the last reply returned all it was asked for (more are likely waiting). */
  private lastFull = false;

  /**
   * Send fetches while credit allows: a first one whenever there is credit (or an early message to
   * register), a second one only while the queue keeps filling whole batches, so Redis has the next
   * batch ready while this process takes in the one before. Replies come back in order on the one
   * connection; each has its own slot in the fetch log (fetch ids alternate between two).
   */
  private topUp(): void {
    const { keys } = this.deps;
    while (this.fetches.length < MAX_FETCHES_IN_FLIGHT) {
      if (this.fetches.length > 0 && !this.lastFull) return;
      const credit = this.credit();
      // A message handed out early is registered by the next fetch, with or without credit: its
      // ack waits for that, and the credit it holds comes back only after its ack (deliverEarly).
      if (credit <= 0 && (this.unregistered.size === 0 || this.fetches.length > 0)) return;
      const source = this.dirtySources.values().next().value ?? keys.queueKey(this.queues[0]!);
      const id = ++this.fetchSeq;
      // The fetch goes out on the blocking connection and is written now (no connection uses
      // auto-pipelining). The fetch id makes a resent fetch (ioredis resends a command whose reply a
      // dropped connection lost) return the batch Redis already handed out, not a second one.
      const reply = this.fetchScripts().run(
        'fetch',
        [keys.unacked, keys.unackedIndex, keys.inflightKey(this.id, source), keys.fetchLogKey(this.id, id), ...this.fetchKeys()],
        [Math.max(0, credit), Date.now() / 1000, keys.deadLetterSuffix(), source, `${id}`],
      ) as Promise<FetchReply>;
      reply.catch(() => undefined); // a later fetch's failure is handled when the loop reaches it
      const taken = Math.max(0, credit);
      this.fetches.push({ reply, credit: taken, source });
      this.requested += taken;
    }
  }

  /**
   * Wait for a message with a blocking move into our inflight list; a watchdog replaces a wedged
   * connection (false: the wait did not complete).
   */
  private async blockForMessage(): Promise<boolean> {
    const { keys } = this.deps;
    const n = this.queues.length;
    const queue = this.queues[this.rotation % n]!;
    const source = keys.queueKey(queue);
    const timeoutSec = n > 1 ? 0.25 : 1;
    const client = (this.blocking ??= this.watch(await this.deps.newBlockingClient()));
    this.dirtySources.add(source);
    let timer: NodeJS.Timeout | undefined;
    const watchdog = new Promise<'wedged'>((resolve) => {
      timer = setTimeout(() => resolve('wedged'), timeoutSec * 1000 + 5000);
    });
    this.inBlockingWait = true;
    try {
      const result = await Promise.race([client.blmove(source, keys.inflightKey(this.id, source), 'RIGHT', 'LEFT', timeoutSec), watchdog]);
      if (result === 'wedged') {
        this.deps.logger.warning('consumer: blocking read got no reply in time; replacing the connection');
        this.blocking = null;
        client.disconnect();
        return false;
      }
      if (result === null) this.dirtySources.delete(source);
      else if (typeof result === 'string') this.deliverEarly(source, result);
      return true;
    } catch (err) {
      if (this.blocking === client && this.running) {
        this.blocking = null;
        client.disconnect();
      }
      throw err;
    } finally {
      this.inBlockingWait = false;
      clearTimeout(timer);
    }
  }

  /**
   * A message a blocking move just put in our inflight list goes to the handler at once, while the
   * fetch that follows registers it in the unacked hash (kombu's layout) in the same round trip that
   * would otherwise come first: one round trip less between a publish and the task on an idle worker.
   * Until that fetch has answered, the message is still recoverable from the inflight list, and its
   * ack waits (an ack before the registration would leave it in unacked, to run again later).
   * Only payloads whose delivery tag fetch.lua reads the same way (one plain "delivery_tag") go early.
   */
  private deliverEarly(key: string, payload: string): void {
    const at = payload.indexOf('"delivery_tag": "');
    if (at < 0 || payload.indexOf('"delivery_tag":', at + 1) >= 0) return;
    let envelope: Envelope;
    try {
      envelope = decodeEnvelope(payload);
    } catch {
      return; // the fetch reports it
    }
    const tag = (envelope.raw.properties as Record<string, unknown> | undefined)?.delivery_tag;
    if (typeof tag !== 'string' || tag.includes('"') || tag.includes('\\') || this.qos.held.has(tag)) return;
    const delivery = new RedisDelivery(this, envelope, this.deps.keys.queueOfKey(key), key);
    delivery.registered = new Promise<void>((resolve) => this.unregistered.set(tag, resolve));
    this.qos.held.set(tag, delivery);
    queueMicrotask(() => this.handOut([delivery]));
  }

  private readonly unregistered = new Map<string, () => void>();

  private markRegistered(tag: string): void {
    const resolve = this.unregistered.get(tag);
    if (!resolve) return;
    this.unregistered.delete(tag);
    const held = this.qos.held.get(tag);
    if (held) held.registered = null; // later settles need not wait
    resolve();
  }

  /**
   * Decode a fetch reply's messages and hold them (outstanding); returns those to hand to the handler.
   * The reply is a status, then per queue key: the key, a count n and n (payload, tag) pairs.
   */
  private accept(reply: FetchReply): RedisDelivery[] {
    const { keys, logger } = this.deps;
    const ready: RedisDelivery[] = [];
    const resent = reply[0] === 'resent';
    if (resent) logger.warning(`consumer: a fetch was answered after its connection dropped; delivering its ${replyCount(reply)} message(s) now`);
    let i = 1;
    while (i < reply.length) {
      const key = String(reply[i]);
      const end = i + 2 + 2 * Number(reply[i + 1]);
      const queue = keys.queueOfKey(key);
      for (i += 2; i < end; i += 2) {
        const tag = String(reply[i + 1]);
        if (this.qos.held.has(tag)) {
          this.markRegistered(tag); // delivered already (early, or before a resent fetch)
          continue;
        }
        let payload = String(reply[i]);
        if (resent) {
          // An unacked entry, [payload, exchange, routing_key], as kombu stores it.
          try {
            payload = JSON.stringify((JSON.parse(payload) as unknown[])[0]);
          } catch {
            continue; // left in unacked: restored after the visibility timeout
          }
        }
        if (tag === '') {
          logger.error(`Received a message on queue '${queue}' that is not a kombu envelope; its raw bytes were moved to the list '${key}${keys.deadLetterSuffix()}'.`);
          continue;
        }
        let envelope: Envelope;
        try {
          envelope = decodeEnvelope(payload);
        } catch (err) {
          logger.error(`Discarding undecodable message on queue '${queue}': ${(err as Error).message}`);
          this.deps.client.lpush(key + keys.deadLetterSuffix(), payload).then(() => this.deps.scripts.run('ack', [keys.unacked, keys.unackedIndex], [tag])).catch((e: Error) =>
            logger.error(`Could not move message ${tag} to '${key}${keys.deadLetterSuffix()}': ${e.message}; it stays in '${keys.unacked}' and comes back after visibility_timeout.`));
          continue;
        }
        const delivery = new RedisDelivery(this, envelope, queue, key);
        this.qos.held.set(tag, delivery);
        ready.push(delivery);
      }
    }
    return ready;
  }

  private handOut(ready: RedisDelivery[]): void {
    for (const delivery of ready) {
      try {
        this.handler(delivery);
      } catch (err) {
        this.deps.logger.error(`Delivery handler threw for message ${delivery.deliveryTag}: ${(err as Error).stack ?? err}`);
      }
    }
  }

  settle(d: RedisDelivery, how: 'ack' | 'requeue'): Promise<void> {
    if (d.settled) return Promise.resolve();
    d.settled = true;
    if (d.registered) return d.registered.then(() => this.settleHeld(d, how));
    return this.settleHeld(d, how);
  }

  private settleHeld(d: RedisDelivery, how: 'ack' | 'requeue'): Promise<void> {
    // The message counts against prefetch until Redis confirms the ack or restore: a fetch on the
    // other connection must never overtake it, or the worker would hold more than prefetch messages.
    if (how === 'requeue') {
      const { keys } = this.deps;
      const dest = keys.queueKey(d.queue, keys.stepFor(d.message.properties.priority));
      return this.deps.scripts.run('restore', [keys.unacked, keys.unackedIndex, dest], [d.deliveryTag, markRedelivered(d.envelope.raw), 'tail', '+inf'])
        .then(() => undefined)
        .finally(() => this.release([d.deliveryTag]));
    }
    // Acks made in the same turn of the event loop go in one script call and share one promise.
    let batch = this.ackBatch;
    if (!batch) {
      const b = { tags: [] as string[], promise: undefined as unknown as Promise<void> };
      b.promise = new Promise<void>((resolve, reject) => setImmediate(() => this.flushAcks(b.tags).then(resolve, reject)));
      this.ackBatch = batch = b;
    }
    batch.tags.push(d.deliveryTag);
    return batch.promise;
  }

  private release(tags: string[]): void {
    for (const tag of tags) this.qos.held.delete(tag);
    // While the loop waits for a reply, freed credit goes into the next fetch now, not when that
    // reply has come back: Redis prepares a batch meanwhile.
    if (this.running && this.fetches.length > 0) this.topUp();
    this.wakeCredit();
  }

  private async flushAcks(tags: string[]): Promise<void> {
    this.ackBatch = null;
    const { keys, logger } = this.deps;
    const ackKeys = [keys.unacked, keys.unackedIndex];
    let missing: string[];
    if (this.running && this.blocking && !this.inBlockingWait) {
      // On the fetch connection Redis runs this ack before any fetch written after it, so the
      // unacked hash never holds more than prefetch messages even though the credit is free now:
      // the next fetch goes out at once instead of a round trip later. (During a blocking wait the
      // ack would queue behind it, so it goes on the shared connection instead, below.)
      const sent = this.fetchScripts().run('ack', ackKeys, tags);
      this.release(tags);
      try {
        missing = (await sent) as string[];
      } catch {
        // That connection was dropped or replaced: once more on the shared one (a tag acked by the
        // first attempt after all is reported as no longer held below).
        missing = (await this.deps.scripts.run('ack', ackKeys, tags)) as string[];
      }
    } else {
      try {
        missing = (await this.deps.scripts.run('ack', ackKeys, tags)) as string[];
      } finally {
        // The credit comes back once Redis has answered: a fetch on the other connection must not
        // overtake the ack. Failed acks free it too: the message comes back after the visibility timeout.
        this.release(tags);
      }
    }
    const why = 'restored after visibility_timeout, or the ack was resent after a reconnect';
    if (missing[0] === '') logger.warning(`possible_duplicate: ${missing[1]} of ${tags.length} messages acknowledged together were no longer held (${why}); they may run twice.`);
    else for (const tag of missing) logger.warning(`possible_duplicate: message ${tag} was no longer held when acknowledged (${why}); it may run twice.`);
  }

  /**
   * Count each failed (re)connect of the fetch connection (or of the shared one, which acks and renewals
   * use): a Redis that stays away is given up on, whatever the loop is waiting for meanwhile.
   */
  private watch(client: Redis, shared = false): Redis {
    const onError = (err: Error) => {
      if (!this.running || client.status === 'ready' || (!shared && this.blocking !== client)) return;
      this.attemptFailed(err, 0).catch(() => undefined);
    };
    client.on('error', onError);
    if (shared) this.unwatchShared = () => client.off('error', onError);
    return client;
  }

  private unwatchShared: (() => void) | undefined;

  /** An error said in full (ACL refusals name the command or key and the rule to add). */
  private explain(err: unknown): Promise<string> {
    return explainRedisError(err, { client: this.deps.client, user: this.deps.user, keys: this.deps.keys }).catch(() => (err as Error).message);
  }

  /** One failed attempt (logged once per distinct error); true when the retries are spent and the consumer gave up. */
  private async attemptFailed(err: unknown, backoffMs: number): Promise<boolean> {
    if (this.retries.gaveUp) return true;
    const why = await this.explain(err);
    return this.retries.failed(why, backoffMs > 0 ? `retrying in ${(backoffMs / 1000).toFixed(1)}s, then with backoff up to 5s` : 'reconnecting');
  }

  /** The retries are spent: fetch nothing more (the worker is told and exits non-zero). */
  private giveUp(): void {
    this.running = false;
    this.wakeCredit();
    const b = this.blocking;
    this.blocking = null;
    b?.disconnect();
  }

  /** Refresh our heartbeat and the delivery time of every message we hold. */
  private async renew(): Promise<void> {
    const { keys } = this.deps;
    const tags = [...this.qos.held.keys()];
    const now = Date.now() / 1000;
    const ttl = this.renewMs * 3 + 1000;
    for (let i = 0; i === 0 || i < tags.length; i += 5000) {
      await this.deps.scripts.run('renew', [keys.unackedIndex, keys.heartbeatKey(this.id)], [now, ttl, ...tags.slice(i, i + 5000)]);
    }
  }

  /** kombu's restore_visible: return messages unacknowledged for longer than visibility_timeout. */
  restoreVisible(): Promise<number> {
    return this.restorer.restoreVisible();
  }

  /** Exchanges whose held messages could not be routed back (reported once each; bounded). */
  get parkedExchanges(): number {
    return this.restorer.parkedExchanges;
  }

  stop(): Promise<void> {
    return (this.stopping ??= this.stopNow());
  }

  private async stopNow(): Promise<void> {
    this.running = false;
    this.wakeCredit();
    clearInterval(this.sweepTimer);
    // Abort a blocking wait now; an item it moved meanwhile is returned from the inflight list below.
    // A fetch in flight is let finish (its messages are held, then restored by restoreUnacked).
    const b = this.blocking;
    if (this.inBlockingWait) {
      this.blocking = null;
      b?.disconnect();
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.loopDone, new Promise((r) => (timer = setTimeout(r, 7000)))]);
    clearTimeout(timer);
    if (this.blocking) {
      this.blocking.disconnect();
      this.blocking = null;
    }
    // Anything a last blocking move left in our inflight lists goes straight back to its queue
    // (after giving up, Redis is not answering: another worker's sweep returns it once our heartbeat lapses).
    const { keys } = this.deps;
    for (const q of this.retries.gaveUp ? [] : this.queues) {
      const source = keys.queueKey(q);
      await this.deps.scripts.run('recover-inflight', [keys.inflightKey(this.id, source), keys.heartbeatKey(this.id) + '/gone', source], []).catch(() => undefined);
    }
    // Messages handed out early whose fetch never answered went back to their queue just above:
    // their acks go ahead (and find nothing to remove; the message runs again, at least once).
    for (const tag of [...this.unregistered.keys()]) this.markRegistered(tag);
  }

  get heldCount(): number {
    return this.qos.held.size;
  }

  restoreUnacked(): Promise<number> {
    if (this.retries.gaveUp && this.qos.held.size > 0) {
      // Each restore would wait out the connection's retries; the messages are safe in unacked meanwhile.
      this.deps.logger.warning(`${this.qos.held.size} held message(s) stay in '${this.deps.keys.unacked}': Redis is not answering; they come back after visibility_timeout.`);
      this.qos.held.clear();
      return Promise.resolve(0);
    }
    return this.qos.restoreUnacked(async (d) => {
      if (d.settled) return false; // acked or being restored already
      d.settled = true;
      this.qos.held.delete(d.deliveryTag);
      try {
        return await this.restorer.restoreEnvelope(d.deliveryTag, d.envelope.raw, d.exchange, d.routingKey, 'head', '+inf');
      } catch (err) {
        // Left in unacked: it comes back after the visibility timeout, or when the binding exists again.
        this.deps.logger.error(`Could not restore message ${d.deliveryTag} at shutdown: ${(err as Error).message}`);
        return false;
      }
    }, this.deps.logger);
  }

  async close(): Promise<void> {
    await this.stop();
    this.unwatchShared?.();
    clearInterval(this.renewTimer);
    const { keys } = this.deps;
    const logs = Array.from({ length: MAX_FETCHES_IN_FLIGHT }, (_, i) => keys.fetchLogKey(this.id, i));
    if (this.retries.gaveUp) return; // they expire by themselves; Redis is not answering
    await this.deps.client.del(keys.heartbeatKey(this.id), ...logs).catch(() => undefined);
  }
}

/** fetch.lua's reply: a status, then per queue key the key, a count n and n (payload, tag) pairs. */
type FetchReply = (string | number)[];

/** How many messages a fetch reply carries. */
function replyCount(reply: FetchReply): number {
  let n = 0;
  for (let i = 1; i < reply.length; i += 2 + 2 * Number(reply[i + 1])) n += Number(reply[i + 1]);
  return n;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
