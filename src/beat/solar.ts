// Celery's solar schedule: runs at a solar event for a place. Celery asks PyEphem with the Naval
// Observatory's conventions (sunrise/sunset: the Sun's upper limb 34' below the horizon, no other
// refraction; twilights: the Sun's centre 6°, 12°, 18° below; noon: the transit); we compute the
// Sun's position with NOAA's formulas (Meeus), good to well under a minute for this century.
import type { Schedule, ScheduleSpec } from './schedule.js';
import { DAY_MS, type Zone } from './tz.js';

export const SOLAR_EVENTS = [
  'dawn_astronomical', 'dawn_nautical', 'dawn_civil', 'sunrise', 'solar_noon',
  'sunset', 'dusk_civil', 'dusk_nautical', 'dusk_astronomical',
] as const;

export type SolarEvent = (typeof SOLAR_EVENTS)[number];

/** Altitude of the Sun's centre at the event, in degrees; the Sun's mean semi-diameter is 16'. */
const ALTITUDE: Record<Exclude<SolarEvent, 'solar_noon'>, number> = {
  dawn_astronomical: -18, dawn_nautical: -12, dawn_civil: -6, sunrise: -(34 + 16) / 60,
  sunset: -(34 + 16) / 60, dusk_civil: -6, dusk_nautical: -12, dusk_astronomical: -18,
};

const RAD = Math.PI / 180;

/** The Sun's declination (radians) and the equation of time (minutes) at an instant. */
export function sunPosition(ms: number): { declination: number; equationOfTime: number } {
  const t = (ms / DAY_MS + 2440587.5 - 2451545) / 36525;
  const l0 = (((280.46646 + t * (36000.76983 + t * 0.0003032)) % 360) + 360) % 360;
  const m = (357.52911 + t * (35999.05029 - 0.0001537 * t)) * RAD;
  const e = 0.016708634 - t * (0.000042037 + 0.0000001267 * t);
  const center = Math.sin(m) * (1.914602 - t * (0.004817 + 0.000014 * t)) + Math.sin(2 * m) * (0.019993 - 0.000101 * t) + Math.sin(3 * m) * 0.000289;
  const omega = (125.04 - 1934.136 * t) * RAD;
  const apparentLongitude = (l0 + center - 0.00569 - 0.00478 * Math.sin(omega)) * RAD;
  const meanObliquity = 23 + (26 + (21.448 - t * (46.815 + t * (0.00059 - t * 0.001813))) / 60) / 60;
  const obliquity = (meanObliquity + 0.00256 * Math.cos(omega)) * RAD;
  const declination = Math.asin(Math.sin(obliquity) * Math.sin(apparentLongitude));
  const y = Math.tan(obliquity / 2) ** 2;
  const l = l0 * RAD;
  const eot = y * Math.sin(2 * l) - 2 * e * Math.sin(m) + 4 * e * y * Math.sin(m) * Math.cos(2 * l)
    - 0.5 * y * y * Math.sin(4 * l) - 1.25 * e * e * Math.sin(2 * m);
  return { declination, equationOfTime: (4 * eot) / RAD };
}

/** Celery's solar(event, lat, lon): latitude north and longitude east positive, in degrees. */
export class Solar implements Schedule {
  constructor(readonly event: SolarEvent, readonly lat: number, readonly lon: number) {
    if (!SOLAR_EVENTS.includes(event)) throw new RangeError(`Argument event "${String(event)}" is invalid, must be one of ${[...SOLAR_EVENTS].sort().join(', ')}.`);
    if (!(lat >= -90 && lat <= 90)) throw new RangeError(`Argument latitude ${lat} is invalid, must be between -90 and 90.`);
    if (!(lon >= -180 && lon <= 180)) throw new RangeError(`Argument longitude ${lon} is invalid, must be between -180 and 180.`);
  }

  /** The event on the UTC day starting at `day` (ms), or null when the Sun does not reach its altitude that day. */
  eventOn(day: number): number | null {
    let t = day + (720 - 4 * this.lon) * 60_000;
    // Each pass uses the Sun's position at the previous estimate; three passes settle to the second.
    for (let pass = 0; pass < 3; pass++) {
      const sun = sunPosition(t);
      const noon = day + (720 - 4 * this.lon - sun.equationOfTime) * 60_000;
      if (this.event === 'solar_noon') {
        t = noon;
        continue;
      }
      const h0 = ALTITUDE[this.event] * RAD;
      const phi = this.lat * RAD;
      const cosH = (Math.sin(h0) - Math.sin(phi) * Math.sin(sun.declination)) / (Math.cos(phi) * Math.cos(sun.declination));
      if (!(cosH >= -1 && cosH <= 1)) return null;
      const minutes = (4 * Math.acos(cosH)) / RAD;
      t = noon + (this.event.startsWith('dawn') || this.event === 'sunrise' ? -minutes : minutes) * 60_000;
    }
    return Math.round(t);
  }

  /** The next event after `after`; days without one (polar day or night) are skipped, up to a year ahead. */
  next(after: number, _zone: Zone): number | null {
    const first = Math.floor(after / DAY_MS) * DAY_MS - DAY_MS;
    for (let day = first; day <= first + 370 * DAY_MS; day += DAY_MS) {
      const t = this.eventOn(day);
      if (t !== null && t > after) return t;
    }
    return null;
  }

  toJSON(): ScheduleSpec {
    return { type: 'solar', event: this.event, lat: this.lat, lon: this.lon };
  }

  toString(): string {
    return `<solar: ${this.event} at latitude ${this.lat}, longitude: ${this.lon}>`;
  }
}

/** Celery's solar(event, lat, lon). */
export function solar(event: SolarEvent, lat: number, lon: number): Solar {
  return new Solar(event, lat, lon);
}
