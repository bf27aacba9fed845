// A grouped horizontal bar chart (log scale) of the throughput medians, as a standalone SVG.
import type { Summary } from './report.js';

const COLORS: Record<string, string> = { celeriac: '#2e7d32', bullmq: '#c62828', celery: '#1565c0', 'celery-node': '#ef6c00' };
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function throughputChart(summaries: Summary[], title: string): string {
  const rows = summaries.filter((s) => s.metric === 'throughput' && s.ok && s.median > 0);
  const groups: { key: string; items: Summary[] }[] = [];
  for (const s of rows) {
    const key = `${s.scenario} ${s.variant}${s.broker === 'amqp' ? ' (RabbitMQ)' : ''}`;
    let g = groups.find((x) => x.key === key);
    if (!g) groups.push((g = { key, items: [] }));
    g.items.push(s);
  }
  const barH = 14, gap = 3, groupGap = 14, left = 190, right = 90, top = 56, width = 900;
  const plotW = width - left - right;
  const maxV = Math.max(10, ...rows.map((r) => r.median));
  const minV = 10;
  const decades = Math.ceil(Math.log10(maxV));
  const x = (v: number) => left + (Math.log10(Math.max(v, minV)) - 1) / (decades - 1) * plotW;
  let y = top;
  const parts: string[] = [];
  for (const g of groups) {
    const h = g.items.length * (barH + gap);
    parts.push(`<text x="${left - 8}" y="${y + h / 2 + 4}" text-anchor="end" font-weight="bold">${esc(g.key)}</text>`);
    for (const s of g.items) {
      const w = Math.max(1, x(s.median) - left);
      parts.push(`<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${COLORS[s.system] ?? '#777'}"><title>${esc(s.label)}: ${Math.round(s.median)} tasks/s</title></rect>`);
      parts.push(`<text x="${(left + w + 4).toFixed(1)}" y="${y + barH - 3}" font-size="11">${esc(s.label)} ${Math.round(s.median).toLocaleString('en-US')}</text>`);
      y += barH + gap;
    }
    y += groupGap;
  }
  const height = y + 30;
  const axis: string[] = [];
  for (let d = 1; d <= decades; d++) {
    const v = 10 ** d;
    const xv = x(v);
    axis.push(`<line x1="${xv}" y1="${top - 6}" x2="${xv}" y2="${y - groupGap}" stroke="#ddd"/>`);
    axis.push(`<text x="${xv}" y="${top - 10}" text-anchor="middle" font-size="11">${v.toLocaleString('en-US')}</text>`);
  }
  const legend = Object.entries(COLORS).map(([k, c], i) => `<rect x="${left + i * 150}" y="${height - 22}" width="12" height="12" fill="${c}"/><text x="${left + i * 150 + 16}" y="${height - 12}" font-size="12">${esc(k === 'celery' ? 'Python Celery' : k === 'celeriac' ? 'Celeriac' : k === 'bullmq' ? 'BullMQ' : k)}</text>`).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="${left}" y="22" font-size="15" font-weight="bold">${esc(title)}</text>
<text x="${left}" y="38" font-size="11" fill="#555">tasks/s, median of runs, log scale (higher is better)</text>
${axis.join('\n')}
${parts.join('\n')}
${legend}
</svg>
`;
}
