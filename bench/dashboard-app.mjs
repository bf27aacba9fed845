// The app module bench/dashboard.ts starts `celeriac dashboard` with (-A): the broker comes from -b.
import { Celeriac } from '../dist/index.js';

export const app = new Celeriac('dashbench');
