// Argument parsers the CLI's commands share.
import { InvalidArgumentError } from 'commander';
import { loads } from '../protocol/json.js';

/** A commander parser for a JSON flag, checked against the shape it must have. */
export function jsonArg<T>(flag: string, check: (v: unknown) => boolean, shape: string) {
  return (v: string): T => {
    let parsed: unknown;
    try {
      parsed = loads(v);
    } catch (err) {
      throw new InvalidArgumentError(`${flag} must be JSON ${shape}: ${(err as Error).message}`);
    }
    if (!check(parsed)) throw new InvalidArgumentError(`${flag} must be JSON ${shape}, got ${v}`);
    return parsed as T;
  };
}
