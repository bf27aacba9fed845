// Beat's schedules as pure functions of a clock: intervals, crontab (Celery's grammar and semantics),
// solar events against published times, and DST changes in Europe/Berlin and America/New_York.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crontab, Crontab, CrontabError } from '../../src/beat/crontab.js';
import { Interval, toSchedule } from '../../src/beat/schedule.js';
import { solar } from '../../src/beat/solar.js';
import { dueRun } from '../../src/beat/entry.js';
import { Zone, zoneFor, zoneName } from '../../src/beat/tz.js';
import type { Schedule } from '../../src/beat/schedule.js';

const UTC = zoneFor('UTC');
const at = (iso: string) => Date.parse(iso);
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString().replace('.000Z', 'Z'));

/** Every run of a schedule in [from, to), following next() as the scheduler does. */
function runs(s: Schedule, zone: Zone, from: string, to: string): string[] {
  const out: string[] = [];
  let t = at(from);
  for (;;) {
    const n = s.next(t, zone);
    if (n === null || n >= at(to)) return out;
    out.push(iso(n)!);
    t = n;
  }
}

test('interval: the next run is one interval after the last; relative rounds down to the unit (Celery)', () => {
  const every30 = new Interval(30);
  assert.equal(iso(every30.next(at('2026-01-01T10:00:07Z'), UTC)), '2026-01-01T10:00:37Z');
  const hourly = new Interval(3600, true);
  assert.equal(iso(hourly.next(at('2026-01-01T10:07:30Z'), UTC)), '2026-01-01T11:00:00Z');
  const minutely = new Interval(90, true);
  assert.equal(iso(minutely.next(at('2026-01-01T10:07:30Z'), UTC)), '2026-01-01T10:09:00Z');
  // A daily relative interval rounds to local midnight in the app's zone.
  const daily = new Interval(86400, true);
  assert.equal(iso(daily.next(at('2026-07-01T10:00:00Z'), zoneFor('Europe/Berlin'))), '2026-07-01T22:00:00Z');
  assert.equal(String(every30), '<freq: 30.00 seconds>');
  assert.throws(() => new Interval(0), /above 0/);
  assert.throws(() => toSchedule('soon', false, 'beat entry "x"'), /beat entry "x": schedule must be a number of seconds, crontab/);
});

test('interval: runs missed while no beat sent collapse into one, the latest due time, phase kept', () => {
  const entry = { schedule: new Interval(10), state: { lastRunAt: at('2026-01-01T00:00:00Z'), totalRunCount: 1 } };
  assert.equal(dueRun(entry, at('2026-01-01T00:00:09.999Z'), UTC), null);
  assert.equal(iso(dueRun(entry, at('2026-01-01T00:00:10Z'), UTC)), '2026-01-01T00:00:10Z');
  assert.equal(iso(dueRun(entry, at('2026-01-01T00:00:35Z'), UTC)), '2026-01-01T00:00:30Z');
  const cron = { schedule: crontab({ minute: '*/5' }), state: { lastRunAt: at('2026-01-01T00:00:00Z'), totalRunCount: 1 } };
  assert.equal(iso(dueRun(cron, at('2026-01-01T01:07:00Z'), UTC)), '2026-01-01T01:05:00Z');
});

test('crontab: Celery grammar — steps, ranges, lists, names, wrap-around ranges', () => {
  const minutes = (spec: string) => [...new Crontab({ minute: spec }).minutes];
  assert.deepEqual(minutes('*/15'), [0, 15, 30, 45]);
  assert.deepEqual(minutes('1,13,30-45/5,50-59/3'), [1, 13, 30, 35, 40, 45, 50, 53, 56, 59]);
  assert.deepEqual([...new Crontab({ hour: '0,8-17/2' }).hours], [0, 8, 10, 12, 14, 16]);
  const dow = (spec: string | number[]) => [...new Crontab({ dayOfWeek: spec }).daysOfWeek].sort();
  assert.deepEqual(dow('mon-fri'), [1, 2, 3, 4, 5]);
  assert.deepEqual(dow('fri-mon'), [0, 1, 5, 6]);
  assert.deepEqual(dow('sunday,Wednesday'), [0, 3]);
  assert.deepEqual(dow('*/2'), [0, 2, 4, 6]);
  assert.deepEqual(dow([1, 3]), [1, 3]);
  assert.deepEqual([...new Crontab({ dayOfMonth: '*/3' }).daysOfMonth].sort((a, b) => a - b), [1, 4, 7, 10, 13, 16, 19, 22, 25, 28, 31]);
  assert.deepEqual([...new Crontab({ monthOfYear: '2-12/2' }).monthsOfYear].sort((a, b) => a - b), [2, 4, 6, 8, 10, 12]);
  assert.deepEqual([...new Crontab({ month_of_year: 'jan-mar' }).monthsOfYear].sort((a, b) => a - b), [1, 2, 3]);
  assert.equal(String(crontab('*/15 9-17 * * mon-fri')), '<crontab: */15 9-17 * * mon-fri (m/h/dM/MY/d)>');
  assert.deepEqual(crontab({ minute: 0, hour: [4, 5] }).toJSON(), { type: 'crontab', minute: '0', hour: '4,5', day_of_week: '*', day_of_month: '*', month_of_year: '*' });
});

test('crontab: errors name the field and what is wrong', () => {
  assert.throws(() => crontab({ minute: 60 }), (e: Error) => e instanceof CrontabError && /minute="60": 60 is above the highest value 59/.test(e.message));
  assert.throws(() => crontab({ hour: '24' }), /hour="24": 24 is above the highest value 23/);
  assert.throws(() => crontab({ dayOfWeek: 7 }), /day_of_week="7": 7 is above the highest value 6/);
  assert.throws(() => crontab({ dayOfMonth: 0 }), /below the lowest value 1/);
  assert.throws(() => crontab({ minute: '5/15' }), /write 5-59\/15/);
  assert.throws(() => crontab({ minute: '*/0' }), /step "0" must be a whole number of at least 1/);
  assert.throws(() => crontab({ minute: '1,,2' }), /empty part/);
  assert.throws(() => crontab({ dayOfWeek: 'funday' }), /"funday" is not a number or a name \(sun, mon/);
  assert.throws(() => crontab({ dayOfMonth: 30, monthOfYear: 2 }), /never falls in month_of_year 2, so it would never run/);
  assert.throws(() => crontab('* * *'), /expected 5 fields/);
});

test('crontab: next runs across hours, days, weekends and the end of a year', () => {
  assert.equal(iso(crontab({ minute: '*/20' }).next(at('2026-01-01T10:55:00Z'), UTC)), '2026-01-01T11:00:00Z');
  // Friday 2026-01-09 10:00 → Monday 09:00.
  assert.equal(iso(crontab({ minute: 0, hour: 9, dayOfWeek: 'mon-fri' }).next(at('2026-01-09T10:00:00Z'), UTC)), '2026-01-12T09:00:00Z');
  assert.equal(iso(crontab('0 0 * * *').next(at('2026-12-31T23:59:00Z'), UTC)), '2027-01-01T00:00:00Z');
  // Day of month and day of week must both match (Celery's AND): the first Monday of each month.
  assert.deepEqual(runs(crontab({ minute: 0, hour: 8, dayOfMonth: '1-7', dayOfWeek: 'mon' }), UTC, '2026-01-01', '2026-04-01'),
    ['2026-01-05T08:00:00Z', '2026-02-02T08:00:00Z', '2026-03-02T08:00:00Z']);
  // Every minute: the next whole minute.
  assert.equal(iso(crontab().next(at('2026-05-05T05:05:05Z'), UTC)), '2026-05-05T05:06:00Z');
});

test('crontab: the last day of a month — day 31 skips short months, L is the last day, Feb 29 waits for a leap year', () => {
  assert.deepEqual(runs(crontab({ minute: 0, hour: 0, dayOfMonth: 31 }), UTC, '2026-01-01', '2026-09-01'),
    ['2026-01-31T00:00:00Z', '2026-03-31T00:00:00Z', '2026-05-31T00:00:00Z', '2026-07-31T00:00:00Z', '2026-08-31T00:00:00Z']);
  assert.deepEqual(runs(crontab({ minute: 30, hour: 23, dayOfMonth: 'L' }), UTC, '2027-12-01', '2028-05-01'),
    ['2027-12-31T23:30:00Z', '2028-01-31T23:30:00Z', '2028-02-29T23:30:00Z', '2028-03-31T23:30:00Z', '2028-04-30T23:30:00Z']);
  assert.equal(iso(crontab({ minute: 0, hour: 12, dayOfMonth: 'L' }).next(at('2026-02-27T13:00:00Z'), UTC)), '2026-02-28T12:00:00Z');
  assert.equal(iso(crontab({ minute: 0, hour: 0, dayOfMonth: 29, monthOfYear: 2 }).next(at('2026-03-01T00:00:00Z'), UTC)), '2028-02-29T00:00:00Z');
  // A daily job at the month's end rolls into the next month.
  assert.deepEqual(runs(crontab({ minute: 0, hour: 6 }), UTC, '2026-04-30T07:00:00Z', '2026-05-02T00:00:00Z'), ['2026-05-01T06:00:00Z']);
});

/** The runs whose local date is `day`, following next() from two days before. */
function runsOnLocalDay(s: Schedule, zone: Zone, day: string): string[] {
  const [y, m, d] = day.split('-').map(Number) as [number, number, number];
  const from = new Date(Date.UTC(y, m - 1, d) - 2 * 86_400_000).toISOString();
  const to = new Date(Date.UTC(y, m - 1, d) + 2 * 86_400_000).toISOString();
  return runs(s, zone, from, to).filter((r) => {
    const w = zone.wallAt(at(r));
    return w.year === y && w.month === m && w.day === d;
  });
}

test('DST in Europe/Berlin: a 02:30 job runs once on the spring-forward day (at 03:30 CEST) and once on the fall-back day', () => {
  const berlin = zoneFor('Europe/Berlin');
  const job = crontab({ minute: 30, hour: 2 });
  assert.deepEqual(runsOnLocalDay(job, berlin, '2026-03-29'), ['2026-03-29T01:30:00Z']); // 03:30 CEST: 02:30 does not exist
  assert.deepEqual(runsOnLocalDay(job, berlin, '2026-10-25'), ['2026-10-25T00:30:00Z']); // the first 02:30 (CEST), not the second
  assert.deepEqual(runsOnLocalDay(job, berlin, '2026-10-26'), ['2026-10-26T01:30:00Z']); // CET from then on
  // An hourly job follows real time: 23 runs on the short day, 25 on the long one.
  const hourly = crontab({ minute: 30 });
  assert.equal(runsOnLocalDay(hourly, berlin, '2026-03-29').length, 23);
  assert.equal(runsOnLocalDay(hourly, berlin, '2026-10-25').length, 25);
});

test('DST in America/New_York: a 02:30 job runs once on each change day; a 01:30 job once on the fall-back day', () => {
  const ny = zoneFor('America/New_York');
  const job = crontab({ minute: 30, hour: 2 });
  assert.deepEqual(runsOnLocalDay(job, ny, '2026-03-08'), ['2026-03-08T07:30:00Z']); // 03:30 EDT
  assert.deepEqual(runsOnLocalDay(job, ny, '2026-11-01'), ['2026-11-01T07:30:00Z']); // 02:30 EST
  assert.deepEqual(runsOnLocalDay(crontab({ minute: 30, hour: 1 }), ny, '2026-11-01'), ['2026-11-01T05:30:00Z']); // 01:30 EDT only
  assert.deepEqual(runsOnLocalDay(job, ny, '2026-03-07'), ['2026-03-07T07:30:00Z']); // EST, the day before
});

test('solar: Atlanta on 6 September 2009 against the US Naval Observatory published times (within a minute)', () => {
  // USNO, as quoted in PyEphem's rise-set guide (Celery's solar uses PyEphem): 33.8 N, 84.4 W, EDT.
  const ny = zoneFor('America/New_York');
  const published: [Parameters<typeof solar>[0], string][] = [
    ['dawn_civil', '06:50'], ['sunrise', '07:15'], ['solar_noon', '13:36'], ['sunset', '19:56'], ['dusk_civil', '20:21'],
  ];
  const midnight = at('2009-09-06T04:00:00Z');
  for (const [event, hhmm] of published) {
    const t = solar(event, 33.8, -84.4).next(midnight, ny)!;
    const w = ny.wallAt(t);
    assert.deepEqual([w.year, w.month, w.day], [2009, 9, w.hour < 4 ? 7 : 6]);
    const [h, m] = hhmm.split(':').map(Number) as [number, number];
    const diffS = Math.abs(w.hour * 3600 + w.minute * 60 + w.second - (h * 3600 + m * 60));
    assert.ok(diffS <= 60, `${event}: computed ${w.hour}:${w.minute}:${w.second} EDT, published ${hhmm}`);
  }
  // The order of one day's events, and the next day's sunrise about a day later.
  const sunrise = solar('sunrise', 33.8, -84.4);
  const first = sunrise.next(midnight, ny)!;
  const second = sunrise.next(first, ny)!;
  assert.ok(Math.abs(second - first - 86_400_000) < 120_000);
});

test('solar: polar day and night skip to the next event; bad arguments fail like Celery', () => {
  // North of the Arctic Circle the Sun does not set around the June solstice: the next sunset is weeks later.
  const tromso = solar('sunset', 69.65, 18.96);
  const next = tromso.next(at('2026-06-21T12:00:00Z'), UTC)!;
  assert.ok(next > at('2026-07-15T00:00:00Z') && next < at('2026-08-01T00:00:00Z'), iso(next)!);
  assert.ok(solar('solar_noon', 69.65, 18.96).next(at('2026-06-21T12:00:00Z'), UTC)! < at('2026-06-22T12:00:00Z'));
  assert.throws(() => solar('moonrise' as never, 0, 0), /Argument event "moonrise" is invalid, must be one of dawn_astronomical/);
  assert.throws(() => solar('sunrise', 91, 0), /latitude 91 is invalid/);
  assert.throws(() => solar('sunrise', 0, -181), /longitude -181 is invalid/);
});

test('time zones: Celery\'s app.timezone rules, Intl data, a clear error for an unknown zone', () => {
  assert.equal(zoneName(null, true), 'UTC');
  assert.equal(zoneName('Europe/Berlin', true), 'Europe/Berlin');
  assert.equal(zoneName(null, false), Intl.DateTimeFormat().resolvedOptions().timeZone);
  assert.throws(() => new Zone('Europe/Berln'), /Unknown time zone "Europe\/Berln" \(setting timezone\): use an IANA name/);
  const berlin = zoneFor('Europe/Berlin');
  assert.equal(berlin.offsetAt(at('2026-01-15T12:00:00Z')), 3_600_000);
  assert.equal(berlin.offsetAt(at('2026-07-15T12:00:00Z')), 7_200_000);
  assert.equal(berlin.instantsOf(Date.UTC(2026, 9, 25, 2, 30)).length, 2);
  assert.equal(berlin.instantsOf(Date.UTC(2026, 2, 29, 2, 30)).length, 0);
});
