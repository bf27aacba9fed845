// Periodic tasks (Celery beat): schedules, the beat service, runtime changes. See docs/beat.md.
export { Beat, type BeatOptions, type SentRun } from './beat.js';
export { BeatSchedule, type BeatEntryInfo, type BeatLeader } from './api.js';
export { crontab, Crontab, CrontabError, type CrontabFields, type Cronspec } from './crontab.js';
export { solar, Solar, SOLAR_EVENTS, type SolarEvent } from './solar.js';
export { Interval, type Schedule, type ScheduleSpec, type ScheduleInput } from './schedule.js';
export type { BeatEntryInput } from './entry.js';
