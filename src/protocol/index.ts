export * from './json.js';
export * from './repr.js';
export * from './errors.js';
export * from './compression.js';
export * from './message.js';
export * from './envelope.js';
export * from './values.js';
export * from './serializers.js';
export { packb, unpackb } from './msgpack.js';
