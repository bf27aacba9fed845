// Celery's worker heartbeat (celery.worker.heartbeat.Heart): worker-online at start, worker-heartbeat
// every `freq` seconds, worker-offline at shutdown. Monitors (celery events, Flower) count a worker as
// offline when no heartbeat arrived within twice its freq.
import os from 'node:os';
import type { EventDispatcher } from './dispatcher.js';

/** What a heartbeat reports about the worker. */
export interface HeartSubject {
  /** Tasks running now. */
  active(): number;
  /** Tasks finished since start. */
  processed(): number;
}

/** sw_ident / sw_ver / sw_sys: which software the node runs (Celery's SOFTWARE_INFO). */
export interface SoftwareInfo {
  sw_ident: string;
  sw_ver: string;
  sw_sys: string;
}

export function softwareInfo(version: string): SoftwareInfo {
  const sys = os.type();
  return { sw_ident: 'celeriac', sw_ver: version, sw_sys: sys === 'Windows_NT' ? 'Windows' : sys };
}

/** os.getloadavg() as Celery reports it: each rounded up to two decimals. */
export function loadAverage(): number[] {
  return os.loadavg().map((l) => Math.ceil(l * 100) / 100);
}

export class Heart {
  private timer: NodeJS.Timeout | undefined;

  /** `freq`: seconds between heartbeats (Celery's 2.0). */
  constructor(
    private readonly dispatcher: EventDispatcher,
    private readonly subject: HeartSubject,
    private readonly software: SoftwareInfo,
    readonly freq = 2.0,
  ) {}

  start(): void {
    this.beat('worker-online');
    this.timer = setInterval(() => this.beat('worker-heartbeat'), this.freq * 1000);
    this.timer.unref();
  }

  /** Send a worker event now (the `heartbeat` control command sends one with freq 5, as Celery's does). */
  beat(type: 'worker-online' | 'worker-heartbeat' | 'worker-offline', freq = this.freq): void {
    this.dispatcher.send(type, {
      freq, active: this.subject.active(), processed: this.subject.processed(), loadavg: loadAverage(), ...this.software,
    });
  }

  /** Stop the heartbeats and say goodbye (worker-offline). */
  stop(): void {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.beat('worker-offline');
  }
}
