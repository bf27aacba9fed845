// `celeriac -b <bad amqp url> worker`: one clear error line naming the fix, a non-zero exit, no stack trace, no hang.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ensureSeedAccount, ensureUserWithoutPermission, SEED } from '../helpers/rabbit-node.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
let host: string;

function runCli(brokerUrl: string): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const p = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', '-b', brokerUrl, 'worker'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    p.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`the CLI hung with ${brokerUrl}:\n${stdout}\n${stderr}`)); }, 30_000);
    p.once('exit', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr, ms: Date.now() - t0 }); });
  });
}

before(async () => {
  const u = new URL(await ensureSeedAccount());
  host = `${u.hostname}:${u.port || 5672}`;
  await ensureUserWithoutPermission('celeriac_noperm', 'nopass');
});

const cases = [
  { what: 'wrong password', url: () => `amqp://${SEED.user}:wrong-pass@${host}/${SEED.vhost}`, expect: /ACCESS_REFUSED.*rabbitmqctl change_password myuser/ },
  { what: 'missing vhost', url: () => `amqp://${SEED.user}:${SEED.password}@${host}/celeriac-missing-vhost`, expect: /no virtual host "celeriac-missing-vhost".*rabbitmqctl add_vhost celeriac-missing-vhost/ },
  { what: 'no permission on the vhost', url: () => `amqp://celeriac_noperm:nopass@${host}/${SEED.vhost}`, expect: /no permission.*rabbitmqctl set_permissions -p myvhost celeriac_noperm "\.\*" "\.\*" "\.\*"/ },
];

for (const c of cases) {
  test(`celeriac worker with a ${c.what}: one error line, exit code non-zero`, async () => {
    const r = await runCli(c.url());
    assert.notEqual(r.code, 0);
    const errLines = r.stderr.split('\n').filter((l) => l.trim() !== '');
    assert.equal(errLines.length, 1, `exactly one line on stderr, got:\n${r.stderr}`);
    assert.match(errLines[0]!, c.expect);
    assert.doesNotMatch(r.stderr + r.stdout, /^\s+at /m, 'no stack trace');
    assert.doesNotMatch(r.stderr + r.stdout, /wrong-pass|nopass/, 'the password is masked');
  });
}
