// Commands whose RESP text Celeriac writes itself, for ioredis to send as they are. Used for Celery
// events: a task.multi PUBLISH carries about 6 kB of event text, and through client.publish() that
// text is joined into a string, scanned for its length, concatenated into the command by ioredis,
// flattened and encoded again by the socket. Written here, each piece goes once into one Buffer.
import { Command, type Redis } from 'ioredis';

/** A command whose wire form is given (ioredis queues it and reads its reply as any other). */
class Prewritten extends Command {
  constructor(name: string, private readonly wire: Buffer) {
    super(name, []);
  }

  override toWritable(): Buffer {
    return this.wire;
  }
}

// Wires are cut from a slab, as Buffer.allocUnsafe cuts small buffers from its pool: a buffer of its
// own per command (about 6 kB, above the pool's limit) costs an ArrayBuffer and its tracking each time.
// A slab lives until the last command cut from it is written.
const SLAB_BYTES = 256 * 1024;
let slab = Buffer.allocUnsafe(0);
let slabUsed = 0;

function cut(bytes: number): Buffer {
  if (bytes > SLAB_BYTES / 4) return Buffer.allocUnsafe(bytes);
  if (slabUsed + bytes > slab.length) {
    slab = Buffer.allocUnsafe(SLAB_BYTES);
    slabUsed = 0;
  }
  const buf = slab.subarray(slabUsed, slabUsed + bytes);
  slabUsed += (bytes + 7) & ~7;
  return buf;
}

/**
 * PUBLISH `channel` with the message `head` + `events` joined by commas + `tail`, as one Buffer holding
 * the whole RESP command: the same bytes client.publish(channel, head + events.join(',') + tail) writes.
 */
export function publishWire(channel: string, head: string, events: readonly string[], tail: string): Buffer {
  const n = events.length;
  const lengths = new Array<number>(n);
  let body = Buffer.byteLength(head) + Buffer.byteLength(tail) + (n > 1 ? n - 1 : 0);
  for (let i = 0; i < n; i++) body += lengths[i] = Buffer.byteLength(events[i]!);
  const prefix = `*3\r\n$7\r\npublish\r\n$${Buffer.byteLength(channel)}\r\n${channel}\r\n$${body}\r\n`;
  const prefixBytes = Buffer.byteLength(prefix);
  const buf = cut(prefixBytes + body + 2);
  let at = buf.write(prefix, 0, 'utf8');
  at += buf.write(head, at, 'utf8');
  for (let i = 0; i < n; i++) {
    if (i > 0) buf[at++] = 44; // ','
    const s = events[i]!;
    // As many bytes as characters: ASCII, which latin1 copies as it is (the same bytes as UTF-8).
    at += buf.write(s, at, lengths[i] === s.length ? 'latin1' : 'utf8');
  }
  at += buf.write(tail, at, 'utf8');
  buf[at] = 13;
  buf[at + 1] = 10;
  return buf;
}

/** Send a command written by publishWire (PUBLISH's reply: how many subscribers got it). */
export function sendPublishWire(client: Redis, wire: Buffer): Promise<unknown> {
  const command = new Prewritten('publish', wire);
  void client.sendCommand(command);
  return command.promise;
}
