import { accessSync, constants } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/**
 * The Chromium the browser tests drive: `CHROMIUM_PATH`, else Debian's
 * `/usr/bin/chromium` (`apt-get install chromium`; `.ci/run` installs it).
 * Playwright never downloads one here.
 */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const executable = (path: string): boolean => {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/**
 * Whether the browser tests can run. A `CHROMIUM_PATH` that was set and is
 * not there fails them (someone asked for that browser, as `.ci/run` does);
 * no Chromium at the default path skips them.
 */
export function chromiumAvailable(): boolean {
  if (executable(CHROMIUM_PATH)) return true;
  if (process.env.CHROMIUM_PATH)
    throw new Error(
      `CHROMIUM_PATH=${CHROMIUM_PATH} is not an executable file: install Chromium there or unset CHROMIUM_PATH to skip the browser tests.`,
    );
  return false;
}

/** Headless Chromium (no sandbox: CI containers run as root). */
export const launchChromium = (): Promise<Browser> =>
  chromium.launch({ executablePath: CHROMIUM_PATH, args: ['--no-sandbox'] });
