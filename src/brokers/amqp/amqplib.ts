// The one place Celeriac loads amqplib. Before loading it, two of its internals are replaced (amqplib copies
// both into its frame and connection code when first loaded, so this must happen first):
// - codec.decodeFields by our field-table decoder, which also knows py-amqp's 'L' tag (see field-table.ts);
// - format.inspect, so a ConnectionClose during the handshake keeps RabbitMQ's reply text ("vhost not found",
//   "access to vhost refused") instead of a bare "got <ConnectionClose channel:0>".
import { createRequire } from 'node:module';
import path from 'node:path';
import type * as Amqplib from 'amqplib';
import { decodeFieldTable } from './field-table.js';

const require = createRequire(import.meta.url);
const libDir = path.join(path.dirname(require.resolve('amqplib')), 'lib');

const codec = require(path.join(libDir, 'codec.js')) as { decodeFields: (b: Buffer) => unknown };
codec.decodeFields = decodeFieldTable;

interface Frame { id?: number; channel: number; fields?: unknown }
const format = require(path.join(libDir, 'format.js')) as { inspect: (f: Frame, show?: boolean) => string; closeMessage: (f: Frame) => string };
const CONNECTION_CLOSE = 655410; // class 10, method 50
const inspectFrame = format.inspect;
format.inspect = (frame, show) => {
  const text = inspectFrame(frame, show);
  return frame && frame.id === CONNECTION_CLOSE && frame.fields ? `${text}: ${format.closeMessage(frame)}` : text;
};

const amqplib = require('amqplib') as typeof Amqplib;
export default amqplib;

const defs = require(path.join(libDir, 'defs.js')) as { decode: (id: number, buf: Buffer) => { headers?: Record<string, unknown> } };

/** True when inbound headers with py-amqp's 'L' tag decode (false if amqplib was loaded before this module). */
export const toleratesLongHeaders: boolean = (() => {
  // basic properties: flags = headers present, then a table { n: L 2^40 }
  const table = Buffer.concat([Buffer.from([1, 0x6e, 0x4c]), Buffer.alloc(8)]);
  table.writeBigInt64BE(1n << 40n, 3);
  const buf = Buffer.alloc(2 + 4 + table.length);
  buf.writeUInt16BE(0x2000, 0);
  buf.writeUInt32BE(table.length, 2);
  table.copy(buf, 6);
  try {
    return defs.decode(60, buf).headers?.n === 2 ** 40;
  } catch {
    return false;
  }
})();
