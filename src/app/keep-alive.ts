// Idle connections do not keep the process alive (as pg's allowExitOnIdle); work in progress does.
// The connections of an app's broker and backend (context flag `idleExit`) unref their sockets; each
// call that waits on them holds one reference on a shared timer until it settles, and a running worker
// holds one for its whole life. A producer script that awaited its work therefore exits without
// app.close(). Transports used directly (tests, tools) keep ordinary, referenced sockets.

let timer: NodeJS.Timeout | undefined;
let holds = 0;

/** Keep the process alive until the returned function is called (idempotent). */
export function holdProcess(): () => void {
  if (holds++ === 0) (timer ??= setInterval(() => undefined, 2 ** 31 - 1)).ref();
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--holds === 0) timer?.unref();
  };
}

/** The same promise; the process stays alive until it settles. */
export function whileRunning<T>(p: Promise<T>): Promise<T> {
  const release = holdProcess();
  p.then(release, release);
  return p;
}

/** Wrap the named async methods of `target` (in place) so each call keeps the process alive until it settles. */
export function holdDuringCalls<T extends object>(target: T, methods: readonly (keyof T)[]): T {
  for (const name of methods) {
    const fn = target[name];
    if (typeof fn !== 'function') continue;
    const original = fn as (...args: unknown[]) => unknown;
    (target as Record<keyof T, unknown>)[name] = function (this: unknown, ...args: unknown[]) {
      const out = original.apply(this, args);
      return out instanceof Promise ? whileRunning(out) : out;
    };
  }
  return target;
}

/** Let an idle socket not hold the process (ioredis and amqplib sockets, after each connect). */
export function unrefSocket(socket: { unref?: () => unknown } | undefined | null): void {
  socket?.unref?.();
}
