// kombu's matcher registry for remote-control `pattern`/`matcher` (glob = fnmatch, pcre = re.match),
// run on RE2 (re2js): matching time is linear in the hostname, so a pattern from the wire cannot stall
// the event loop, and patterns longer than MAX_PATTERN_LENGTH are refused before they are compiled.
import { RE2JS } from 're2js';

export const MATCHERS = ['glob', 'pcre'] as const;
export type MatcherName = (typeof MATCHERS)[number];

/** Longest pattern compiled; hostnames are short, and a longer pattern is a mistake or an attack. */
export const MAX_PATTERN_LENGTH = 1024;

/** A pattern or matcher this worker will not run (the request is then for nobody here). */
export class PatternRefused extends Error {
  override name = 'PatternRefused';
}

/**
 * kombu's match(hostname, pattern, matcher): glob matches the whole hostname (fnmatch), pcre matches
 * at its start (Python's re.match). Throws PatternRefused for an unknown matcher, a pattern that is
 * too long, or one RE2 cannot run (backreferences, lookaround, bad syntax).
 */
export function matchHostname(hostname: string, pattern: string, matcher: string): boolean {
  if (!(MATCHERS as readonly string[]).includes(matcher)) {
    throw new PatternRefused(`unknown matcher '${matcher}' (kombu knows ${MATCHERS.join(' and ')})`);
  }
  if (pattern.length > MAX_PATTERN_LENGTH) {
    throw new PatternRefused(`pattern of ${pattern.length} characters is longer than ${MAX_PATTERN_LENGTH}`);
  }
  const source = matcher === 'glob' ? globToRegex(pattern) : pattern;
  let re: RE2JS;
  try {
    re = RE2JS.compile(source);
  } catch (err) {
    throw new PatternRefused(`${(err as Error).message} (patterns run on RE2: no backreferences or lookaround)`);
  }
  return matcher === 'glob' ? re.matches(hostname) : re.matcher(hostname).lookingAt();
}

/** Python's fnmatch.translate, for RE2: * ? [seq] [!seq]; an unclosed [ is a literal. */
export function globToRegex(glob: string): string {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') out += '.*';
    else if (c === '?') out += '.';
    else if (c === '[') {
      let j = i + 1;
      if (glob[j] === '!') j++;
      if (glob[j] === ']') j++;
      while (j < glob.length && glob[j] !== ']') j++;
      if (j >= glob.length) {
        out += '\\[';
        continue;
      }
      let body = glob.slice(i + 1, j);
      const negate = body.startsWith('!');
      if (negate) body = body.slice(1);
      out += `[${negate ? '^' : ''}${body.replace(/[\\\]^[]/g, '\\$&')}]`;
      i = j;
    } else out += escapeRegex(c);
  }
  return `(?s:${out})`;
}

function escapeRegex(c: string): string {
  return /[\\^$.|?*+()[\]{}]/.test(c) ? `\\${c}` : c;
}
