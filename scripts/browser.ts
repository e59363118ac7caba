/**
 * `npx tsx scripts/browser.ts`: makes sure the browser the end-to-end suite
 * drives is installed: Debian's `chromium` (playwright's own browser
 * downloads are not used). As root it installs it with apt-get, like the
 * service manager does for the services; otherwise it says what to run.
 * `npm test` runs this before vitest.
 */
import { existsSync } from 'node:fs';
import { ensureDebianPackages, ServiceProblem } from './services/proc.ts';

export const chromiumPath = '/usr/bin/chromium';

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    ensureDebianPackages('browser', ['chromium'], () => existsSync(chromiumPath));
  } catch (err) {
    // Not fatal here: the browser suite fails on its own, saying the same.
    process.stderr.write(`[browser] ${err instanceof ServiceProblem ? err.message : String(err)}\n`);
  }
}
