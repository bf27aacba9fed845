// The interop app as a module for the CLI: `celeriac -A test/interop/ts/app.ts ... worker`.
import { createInteropApp, configFromEnv } from './tasks.js';

export const app = createInteropApp(configFromEnv(process.env));
export default app;
