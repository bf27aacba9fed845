// Run the celeriac command line (src/cli/main.ts through tsx) and collect its exit code and output.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The node arguments that start the CLI from the repository root. */
export const CLI = ['--import', 'tsx', 'src/cli/main.ts'];

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = 30_000): Promise<CliResult> {
  return run(process.execPath, [...CLI, ...args], { env: { ...process.env, ...env }, timeout: timeoutMs }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}
