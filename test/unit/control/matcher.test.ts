// kombu's remote-control matchers (glob = fnmatch, pcre = re.match) on a linear-time engine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { globToRegex, matchHostname, MAX_PATTERN_LENGTH, PatternRefused } from '../../../src/control/matcher.js';
import { decodeControlRequest, encodeControlRequest } from '../../../src/control/pidbox.js';
import { isForNode } from '../../../src/control/worker-control.js';

test('pcre matches at the start of the hostname, as re.match does', () => {
  assert.equal(matchHostname('celery@web1', 'celery@web', 'pcre'), true);
  assert.equal(matchHostname('celery@web1', 'web', 'pcre'), false, 're.match is anchored at the start');
  assert.equal(matchHostname('celery@web1', '.*web1$', 'pcre'), true);
  assert.equal(matchHostname('celery@web1', 'celery@(?P<kind>web|db)\\d', 'pcre'), true, "Python's named groups");
});

test('glob matches the whole hostname, as fnmatch does: * ? [seq] [!seq]', () => {
  assert.equal(matchHostname('celery@web1', 'celery@*', 'glob'), true);
  assert.equal(matchHostname('celery@web1', 'celery@web', 'glob'), false);
  assert.equal(matchHostname('celery@web1', 'celery@web?', 'glob'), true);
  assert.equal(matchHostname('celery@web1', 'celery@web[0-9]', 'glob'), true);
  assert.equal(matchHostname('celery@web1', 'celery@web[!0-9]', 'glob'), false);
  assert.equal(matchHostname('a.b(c)+', 'a.b(c)+', 'glob'), true, 'regex characters are literals in a glob');
  assert.equal(matchHostname('axb', 'a.b', 'glob'), false);
  assert.equal(matchHostname('a[b', 'a[b', 'glob'), true, 'an unclosed [ is a literal');
  assert.equal(matchHostname('a]b', 'a[]]b', 'glob'), true, '] first in a set is a member');
  assert.equal(matchHostname('a^b', 'a[\\^]b', 'glob'), true);
  assert.equal(globToRegex('*.x'), '(?s:.*\\.x)');
});

test('bad, unknown, too long and backtracking-only patterns are refused with a reason, never thrown as SyntaxError', () => {
  const refused = (p: string, m: string, why: RegExp) =>
    assert.throws(() => matchHostname('celery@x', p, m), (e: unknown) => e instanceof PatternRefused && why.test((e as Error).message));
  refused('(', 'pcre', /missing closing \)/);
  refused('(a)\\1', 'pcre', /no backreferences/);
  refused('(?=a)', 'pcre', /lookaround/);
  refused('x', 'regex', /unknown matcher 'regex'/);
  refused('a'.repeat(MAX_PATTERN_LENGTH + 1), 'pcre', /longer than 1024/);
});

test('a catastrophic-backtracking pattern runs in linear time', () => {
  const host = `${'a'.repeat(5000)}!`;
  const start = performance.now();
  assert.equal(matchHostname(host, '(a+)+$', 'pcre'), false);
  assert.equal(matchHostname(host, '(a|aa)*$', 'pcre'), false);
  assert.equal(matchHostname(host, '*a*a*a*a*a*a*a*a*a*b', 'glob'), false);
  // A backtracking engine needs longer than the age of the universe here; generous for a loaded machine.
  assert.ok(performance.now() - start < 5000, `took ${performance.now() - start} ms`);
});

test('isForNode follows kombu: destination first, then pattern and matcher, else everyone', () => {
  const req = (body: Record<string, unknown>) => decodeControlRequest({ ...encodeControlRequest('ping', {}).message, body: Buffer.from(JSON.stringify({ method: 'ping', ...body })) })!;
  assert.equal(isForNode(req({}), 'celery@a'), true);
  assert.equal(isForNode(req({ destination: ['celery@b'] }), 'celery@a'), false);
  assert.equal(isForNode(req({ destination: 'celery@a' }), 'celery@a'), true, 'a lone string destination names one node');
  assert.equal(isForNode(req({ destination: 'celery@b' }), 'celery@a'), false, 'never everyone');
  assert.equal(isForNode(req({ destination: ['celery@a'], pattern: '(', matcher: 'pcre' }), 'celery@a'), true, 'destination wins');
  assert.equal(isForNode(req({ pattern: 'celery@a', matcher: 'glob' }), 'celery@a'), true);
  assert.throws(() => isForNode(req({ pattern: '(', matcher: 'pcre' }), 'celery@a'), PatternRefused);
});
