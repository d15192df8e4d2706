/**
 * What the dashboard's browser tests share: Debian's chromium driven by
 * playwright-core (no browser download), where screenshots go, and polling until
 * the page shows something.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';

export const CHROMIUM = process.env.TROSYN_CHROMIUM ?? '/usr/bin/chromium';
/** Screenshots kept as test artifacts (out of git). */
export const SCREENSHOTS = join('tmp', 'dashboard-screenshots');
export const haveBrowser = existsSync(CHROMIUM);
if (!haveBrowser)
  console.error(
    `\n*** SKIPPING the dashboard browser tests: no chromium at ${CHROMIUM} (apt-get install chromium) ***\n`,
  );

/** Starts chromium headless, with nothing of its own going to the network. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Polls `check` every 100 ms until it holds, or fails naming `what`. */
export async function until(
  check: () => Promise<boolean> | boolean,
  what: string,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (
      await Promise.resolve()
        .then(check)
        .catch(() => false)
    )
      return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
