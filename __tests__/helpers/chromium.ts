/**
 * Where the browser tests find a Chromium or Chrome: `CHROME_PATH` when set, else the usual
 * places on Linux and macOS. Playwright's own download (`npx playwright install`) is not
 * needed: playwright-core drives any recent Chromium.
 */
import { accessSync, constants } from 'node:fs';

const USUAL_PLACES = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome',
  '/usr/bin/google-chrome-stable',
  '/snap/bin/chromium',
  '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome',
  '/Applications/Chromium.app/Contents/MacOS/Chromium',
];

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The browser to launch; throws with what to install when there is none. */
export function chromiumPath(): string {
  const given = process.env.CHROME_PATH;
  if (given !== undefined && given !== '') {
    if (executable(given)) return given;
    throw new Error(`CHROME_PATH is ${JSON.stringify(given)}, which is not an executable file`);
  }
  const found = USUAL_PLACES.find(executable);
  if (found !== undefined) return found;
  throw new Error(
    `No Chromium or Chrome found (looked in ${USUAL_PLACES.join(', ')}). The browser test needs one: on Debian or Ubuntu \`sudo apt-get install chromium\`, on macOS install Google Chrome, or set CHROME_PATH to a Chromium/Chrome executable.`,
  );
}
