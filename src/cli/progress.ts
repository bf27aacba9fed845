// One progress line on a terminal (silent when stderr is not a TTY or under CI).

/** Show a spinner with a message until the returned function is called. */
export function progressLine(message: string): () => void {
  if (!process.stderr.isTTY || process.env.CI) return () => undefined;
  const frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
  let i = 0;
  const started = Date.now();
  const draw = () => process.stderr.write(`\r${frames[i++ % frames.length]} ${message} (${((Date.now() - started) / 1000).toFixed(1)}s)\x1b[K`);
  draw();
  const t = setInterval(draw, 100);
  let stopped = false;
  return () => {
    if (stopped) return;
    stopped = true;
    clearInterval(t);
    process.stderr.write('\r\x1b[K');
  };
}

/** A counter line: "label 120/500 (24%)" redrawn in place. */
export function progressCounter(label: string, total: number): { update(done: number): void; done(): void } {
  const tty = process.stderr.isTTY && !process.env.CI;
  let last = 0;
  return {
    update(done: number) {
      const now = Date.now();
      if (!tty || now - last < 100) return;
      last = now;
      process.stderr.write(`\r${label} ${done}/${total} (${Math.floor((done / total) * 100)}%)\x1b[K`);
    },
    done() {
      if (tty) process.stderr.write('\r\x1b[K');
    },
  };
}
