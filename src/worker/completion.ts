// What happens after a handler has returned, batched: early acks of one event-loop turn share one
// promise, successes stored in one backend batch share one callback, and their events run once the
// ack is confirmed. The worker bounds how much of this is in flight, and waits for all of it at shutdown.
import type { Delivery } from '../brokers/types.js';
import type { ResultBackend, ResultMeta } from '../backends/types.js';
import type { TaskRequest } from '../protocol/message.js';
import type { Logger } from '../app/log.js';

/** What a finishing task run answers for when its finishing fails inside the worker (Request). */
export interface FinishingRun {
  onInternalError(err: unknown): void;
}

interface StoredSuccess {
  req: TaskRequest;
  ack: Promise<void>;
  succeeded: (() => void) | null;
}

export class Completions {
  /** Early acks still in flight for tasks that already finished (awaited at shutdown). */
  private readonly pendingAcks = new Set<Promise<void>>();
  /** Tasks whose handler returned and whose result/ack is still being written. */
  private readonly finishing = new Set<Promise<void>>();
  /** Successes (early ack) whose results wait in the backend's current store batch. */
  private storing = 0;
  private storeOf: Promise<void> | undefined;
  private storeList: StoredSuccess[] = [];
  private storeDone: Promise<void> = Promise.resolve();
  private lastAck: Promise<void> | undefined;
  private lastAckSafe: Promise<void> | undefined;
  private afterAckOf: Promise<void> | undefined;
  private afterAckList: (() => void)[] = [];

  constructor(private readonly logger: Logger) {}

  /** Results being stored and messages being settled, for the worker's bound on work in flight. */
  get inFlight(): number {
    return this.finishing.size + this.storing;
  }

  storeFailed(status: string, req: TaskRequest, err: unknown): void {
    this.logger.error(`Could not store the ${status} state of task ${req.task}[${req.id}]: ${(err as Error)?.message ?? err}`);
  }

  /** Count `finishing` as in flight until it settles; if it fails, `run` settles its message and says so. */
  track(finishing: Promise<void>, run?: FinishingRun): void {
    this.finishing.add(finishing);
    const done = () => void this.finishing.delete(finishing);
    finishing.then(done, (err: unknown) => {
      done();
      if (run) run.onInternalError(err);
      else this.logger.error(`Internal error after a task finished: ${(err as Error)?.stack ?? err}`);
    });
  }

  /**
   * Store a success's result, then run its events after its ack. Results stored in one turn share
   * the backend's batch promise, and the tasks of a batch share one callback on it (a promise chain
   * per task costs about as much as the task). Resolves when the batch is done; never rejects.
   */
  storeSuccess(backend: ResultBackend, req: TaskRequest, meta: ResultMeta, ack: Promise<void>, succeeded: (() => void) | null): Promise<void> {
    let stored: Promise<void>;
    try {
      stored = backend.store(meta, { replyTo: req.replyTo, correlationId: req.correlationId });
    } catch (err) {
      this.storeFailed('SUCCESS', req, err); // e.g. a result that cannot be encoded
      this.afterAck(ack, succeeded);
      return Promise.resolve();
    }
    if (stored !== this.storeOf) {
      const list: StoredSuccess[] = [];
      this.storeOf = stored;
      this.storeList = list;
      const run = (failed: boolean, err?: unknown) => {
        // Tasks stored from now on start a fresh list (this one has run).
        if (this.storeOf === stored) this.storeOf = undefined;
        this.storing -= list.length;
        for (const s of list) {
          if (failed) this.storeFailed('SUCCESS', s.req, err);
          this.afterAck(s.ack, s.succeeded);
        }
      };
      this.storeDone = stored.then(() => run(false), (err: unknown) => run(true, err));
      this.track(this.storeDone);
    }
    this.storeList.push({ req, ack, succeeded });
    this.storing++;
    return this.storeDone;
  }

  /**
   * Send the early ack. Acks of one event-loop turn share one promise on Redis: its failure is logged
   * once for all of them, and the promise returned here never rejects.
   */
  ackEarly(d: Delivery, req: TaskRequest): Promise<void> {
    const ack = d.ack();
    if (ack === this.lastAck) return this.lastAckSafe!;
    this.lastAck = ack;
    return (this.lastAckSafe = ack.catch((err) => this.logger.error(`Could not acknowledge ${req.task}[${req.id}] (and the messages acknowledged with it): ${(err as Error).message}`)));
  }

  /**
   * Run `fn` once the early ack `ack` is confirmed (or failed). Tasks sharing an ack share one
   * callback on it; a warm shutdown waits for these before it closes the connection.
   */
  afterAck(ack: Promise<void>, fn: (() => void) | null): void {
    if (ack !== this.afterAckOf) {
      const list: (() => void)[] = [];
      this.afterAckOf = ack;
      this.afterAckList = list;
      const done = ack.then(() => {
        // Tasks that finish from now on register a fresh callback (this list has run).
        if (this.afterAckOf === ack) this.afterAckOf = undefined;
        for (const g of list) {
          try {
            g();
          } catch (err) {
            // A report (log line, listener) failed: the task is stored and acked; the others still report.
            this.logger.error(`Could not report a finished task: ${(err as Error)?.stack ?? err}`);
          }
        }
      });
      this.pendingAcks.add(done);
      void done.finally(() => this.pendingAcks.delete(done));
    }
    if (fn) this.afterAckList.push(fn);
  }

  /** Wait until every result being stored, message being settled and early ack has finished. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.finishing]);
    await Promise.allSettled([...this.pendingAcks]);
  }
}
