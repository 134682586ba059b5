/** Integration-suite global setup: checks that the servers the tests start are installed (setup.mjs installs them). */
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  const missing: string[] = [];
  for (const bin of ['redis-server']) {
    try {
      execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
    } catch {
      missing.push(bin);
    }
  }
  if (missing.length > 0) {
    throw new Error(
      `missing servers for the integration tests: ${missing.join(', ')} (run: node scripts/setup.mjs test)`,
    );
  }
}
