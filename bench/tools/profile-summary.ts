// Summarise a V8 .cpuprofile (from `npm run bench -- --profile`): self time by function and by file.
// usage: node --import tsx bench/tools/profile-summary.ts <file.cpuprofile> [top=25]
import fs from 'node:fs';

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number; children?: number[] }
interface Profile { nodes: Node[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }

const file = process.argv[2];
if (!file) throw new Error('usage: profile-summary.ts <file.cpuprofile> [top]');
const top = Number(process.argv[3] ?? 25);
const p = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const selfUs = new Map<number, number>();
for (let i = 0; i < p.samples.length; i++) selfUs.set(p.samples[i]!, (selfUs.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);

const short = (url: string) => url.replace(/^file:\/\//, '').replace(/.*\/node_modules\/\.cache\/celeriac-bench\//, '').replace(/.*\/node_modules\//, 'npm:') || '(native)';
const fnKey = (n: Node) => `${n.callFrame.functionName || '(anonymous)'}  ${short(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
const fileKey = (n: Node) => {
  const u = short(n.callFrame.url);
  if (u.startsWith('npm:')) return u.split('/').slice(0, u.startsWith('npm:@') ? 2 : 1).join('/');
  if (n.callFrame.url === '') return `(${n.callFrame.functionName})`;
  return u.startsWith('node:') ? 'node: internals' : u;
};
const agg = (key: (n: Node) => string) => {
  const m = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    m.set(key(n), (m.get(key(n)) ?? 0) + us);
  }
  return [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
};
const pct = (us: number) => ((100 * us) / total).toFixed(1).padStart(5) + '%';
console.log(`${file}: ${(total / 1000).toFixed(0)} ms sampled`);
console.log('\nself time by file/package:');
for (const [k, us] of agg(fileKey)) console.log(`${pct(us)}  ${k}`);
console.log('\nself time by function:');
for (const [k, us] of agg(fnKey)) console.log(`${pct(us)}  ${k}`);
