import { deflateSync, inflateSync, brotliCompressSync, brotliDecompressSync } from 'node:zlib';
import { DecodeError } from './errors.js';

// kombu's names and aliases; "application/x-gzip" is a zlib stream, not gzip.
const ALIASES: Record<string, string> = {
  zlib: 'application/x-gzip',
  gzip: 'application/x-gzip',
  'application/x-gzip': 'application/x-gzip',
  brotli: 'application/x-brotli',
  'application/x-brotli': 'application/x-brotli',
};

export function compressionType(name: string): string {
  const t = ALIASES[name];
  if (!t) throw new Error(`Unsupported compression ${JSON.stringify(name)}: use 'zlib' (or 'gzip') or 'brotli'.`);
  return t;
}

export function compress(name: string, data: Buffer): { type: string; data: Buffer } {
  const type = compressionType(name);
  return { type, data: type === 'application/x-brotli' ? brotliCompressSync(data) : deflateSync(data) };
}

export function decompress(type: string, data: Buffer): Buffer {
  const t = ALIASES[type];
  try {
    if (t === 'application/x-gzip') return inflateSync(data);
    if (t === 'application/x-brotli') return brotliDecompressSync(data);
  } catch (err) {
    throw new DecodeError(`Could not decompress ${type} body: ${(err as Error).message}`);
  }
  throw new DecodeError(`Unsupported compression ${JSON.stringify(type)} in message header`);
}
