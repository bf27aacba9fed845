// kombu's serializer registry, for the two Celeriac implements: json and msgpack. task_serializer,
// result_serializer and accept_content name them; pickle and yaml are refused with kombu's own words.
import { dumps, type JsonOptions } from './json.js';
import { loads } from './json-parse.js';
import { packb, unpackb } from './msgpack.js';
import { ContentDisallowed } from './errors.js';

export interface Serializer {
  readonly name: 'json' | 'msgpack';
  readonly contentType: string;
  readonly contentEncoding: string;
  /** JSON as text (so Redis and SQLite can keep it as a string), msgpack as bytes. */
  encode(value: unknown, opts?: JsonOptions): string | Buffer;
  decode(data: string | Uint8Array, opts?: JsonOptions): unknown;
}

export const JSON_SERIALIZER: Serializer = {
  name: 'json',
  contentType: 'application/json',
  contentEncoding: 'utf-8',
  encode: (value, opts) => dumps(value, opts),
  decode: (data, opts) => loads(typeof data === 'string' ? data : Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'), opts),
};

export const MSGPACK_SERIALIZER: Serializer = {
  name: 'msgpack',
  contentType: 'application/x-msgpack',
  contentEncoding: 'binary',
  encode: (value) => packb(value),
  decode: (data) => unpackb(typeof data === 'string' ? Buffer.from(data, 'latin1') : data),
};

const BY_NAME: Record<string, Serializer> = { json: JSON_SERIALIZER, msgpack: MSGPACK_SERIALIZER };
const BY_TYPE: Record<string, Serializer> = { 'application/json': JSON_SERIALIZER, 'application/x-msgpack': MSGPACK_SERIALIZER };
/** kombu's names for content types (accept_content takes either). */
const NAME_TO_TYPE: Record<string, string> = {
  json: 'application/json',
  msgpack: 'application/x-msgpack',
  pickle: 'application/x-python-serialize',
  yaml: 'application/x-yaml',
};
const TYPE_TO_NAME: Record<string, string> = Object.fromEntries(Object.entries(NAME_TO_TYPE).map(([n, t]) => [t, n]));

const WHY = 'Celeriac implements json and msgpack; pickle and yaml carry Python objects that a TypeScript process cannot build';

/** kombu.exceptions.SerializerNotInstalled. */
export class SerializerNotInstalled extends Error {
  override name = 'SerializerNotInstalled';
}

/** The serializer task_serializer / result_serializer names; kombu's error for any other name. */
export function serializerByName(name: unknown, setting = 'task_serializer'): Serializer {
  const s = BY_NAME[String(name)];
  if (!s) throw new SerializerNotInstalled(`No encoder installed for ${String(name)} (${setting}: ${WHY})`);
  return s;
}

/** The serializer of a content type, or undefined when Celeriac has none for it. */
export function serializerForType(contentType: string): Serializer | undefined {
  return BY_TYPE[contentType];
}

/** accept_content as content types (names or types); kombu's error for a name it has no serializer for. */
export function acceptedContentTypes(accept: readonly string[], setting = 'accept_content'): string[] {
  return accept.map((n) => {
    const type = n.includes('/') ? n : NAME_TO_TYPE[n];
    if (!type || !BY_TYPE[type]) throw new SerializerNotInstalled(`No encoder/decoder installed for ${n} (${setting}: ${WHY})`);
    return type;
  });
}

/** Celery's ContentDisallowed for a type not in accept_content. */
export function disallowed(contentType: string): ContentDisallowed {
  const name = TYPE_TO_NAME[contentType];
  return new ContentDisallowed(`Refusing to deserialize untrusted content of type ${name ? `${name} (${contentType})` : contentType}`);
}

/** Check the serializer settings at start-up (worker start, first publish), as Celery fails on them. */
export function checkSerializerSettings(conf: { task_serializer?: unknown; result_serializer?: unknown; accept_content?: unknown; result_accept_content?: unknown; celery_peer_version?: unknown }): void {
  jsonTagsFor(conf.celery_peer_version);
  serializerByName(conf.task_serializer ?? 'json', 'task_serializer');
  serializerByName(conf.result_serializer ?? 'json', 'result_serializer');
  if (Array.isArray(conf.accept_content)) acceptedContentTypes(conf.accept_content as string[], 'accept_content');
  if (Array.isArray(conf.result_accept_content)) acceptedContentTypes(conf.result_accept_content as string[], 'result_accept_content');
}

/**
 * Whether JSON for peers of this Celery version carries kombu's tags: Celery 5.3 (kombu 5.3) added
 * them. celery_peer_version is unset (the current Celery), '5.2', '5.6.3', …
 */
export function jsonTagsFor(celeryPeerVersion: unknown): boolean {
  if (celeryPeerVersion === undefined || celeryPeerVersion === null || celeryPeerVersion === '') return true;
  const m = /^(\d+)\.(\d+)/.exec(String(celeryPeerVersion));
  if (!m) throw new TypeError(`celery_peer_version must be a Celery version such as '5.2' or '5.6', got ${JSON.stringify(celeryPeerVersion)}`);
  return Number(m[1]) > 5 || (Number(m[1]) === 5 && Number(m[2]) >= 3);
}
