// The browser every test here drives: Debian's Chromium (/usr/bin/chromium, or $CHROMIUM),
// never a downloaded one, started headless with the flags this closed sandbox needs (no
// background networking, no QUIC, no sandbox as root).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

export const FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
];

// The same, for pages that must start playback without a user gesture.
export const PLAYER_FLAGS = [...FLAGS, "--autoplay-policy=no-user-gesture-required"];

// Runs `run(page)` in a fresh headless Chromium with a new, temporary profile (removed after),
// then prints `result` as JSON on stdout and exits: 0 if `run` set `result.ok`, 1 if it threw
// (`result.error` says what) or if `deadlineMs` passed first. `flags` are Chromium's
// arguments; `onLaunch(context)` runs once the browser is up, `beforeFinish(result)` just
// before the report is printed.
export async function runInChromium(
  result,
  run,
  { deadlineMs, flags = FLAGS, onLaunch = () => {}, beforeFinish = () => {} },
) {
  const profile = mkdtempSync(join(tmpdir(), "reelserve-chromium-"));
  let context;
  const finish = (code) => {
    clearTimeout(deadline);
    beforeFinish(result);
    process.stdout.write(JSON.stringify(result, null, 2) + "\n");
    try {
      rmSync(profile, { recursive: true, force: true });
    } catch {}
    process.exit(code);
  };
  const deadline = setTimeout(() => {
    result.error = `deadline of ${deadlineMs} ms passed`;
    finish(1);
  }, deadlineMs);
  try {
    // A persistent context on a fresh directory: the "new empty user-data-dir" (launch() would
    // make one too, but this way it is explicit and removed by us).
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: flags,
      viewport: { width: 1280, height: 800 },
      timeout: 20000,
    });
    onLaunch(context);
    const page = context.pages()[0] || (await context.newPage());
    await run(page);
  } catch (error) {
    result.error = String(error && error.message ? error.message : error);
  }
  try {
    if (context) await context.close();
  } catch {}
  finish(result.ok ? 0 : 1);
}
