// Warnings the CLI gives before silence: a task name the app does not know, a worker with no task.
import type { Celeriac } from '../app/celeriac.js';
import { closest } from './suggest.js';

/** A warning for `call` with a name the loaded app does not register (it is still sent: Python may implement it). */
export function unregisteredTaskWarning(app: Celeriac, task: string, appSpec: string | undefined): string | undefined {
  if (!appSpec || app.tasks.has(task)) return undefined;
  const guess = closest(task, app.tasks.keys());
  return `Warning: ${task} is not a task of app ${app.main} (-A ${appSpec})${guess ? `; did you mean ${guess}?` : ''} Sending it anyway: a worker in another process or language may implement it.`;
}

/** The warning for a worker whose app registers no task (every message would be rejected as unregistered). */
export function noTasksWarning(app: Celeriac, appSpec: string | undefined): string | undefined {
  // Celery's celery.* built-ins are registered on every app: they don't count.
  if ([...app.tasks.keys()].some((name) => !name.startsWith('celery.'))) return undefined;
  return appSpec
    ? `App ${app.main} (-A ${appSpec}) registers no tasks: this worker rejects every message it receives as unregistered. Does -A name the module that defines them with app.task()?`
    : 'No app module given (-A): this worker has no tasks and rejects every message it receives as unregistered. Pass -A <module> exporting your app.';
}
