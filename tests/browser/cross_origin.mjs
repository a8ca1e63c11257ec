// Opens a page on one origin that uses a movie on another, as a player embedded in a
// different site does: `<video crossorigin>` must play it, and `fetch()` with a Range must be
// able to read `Content-Range` (a header scripts only see when the server exposes it).
//
// Usage: node tests/browser/cross_origin.mjs PAGE_URL
//
// PAGE_URL is tests/browser.rs's page (served by one reelserve) with `?target=MOVIE_URL` (on
// another). Prints one JSON object: what the video and the fetch saw. Exits 0 when the page
// reported (whatever it saw: allowed or refused is for the Rust test to judge), 1 when it
// never did, 2 on bad usage.

import { chromium } from "playwright-core";
import { CHROMIUM, FLAGS } from "./chromium.mjs";

const [url] = process.argv.slice(2);
if (!url) {
  console.error("usage: node cross_origin.mjs PAGE_URL");
  process.exit(2);
}


const result = { ok: false, url };
let browser;
try {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
  const page = await browser.newPage();
  page.on("console", (m) => {
    if (m.type() === "error") (result.console_errors ||= []).push(m.text());
  });
  await page.goto(url, { waitUntil: "load", timeout: 15000 });
  const handle = await page.waitForFunction(() => (window.report && window.report.done ? window.report : null), null, {
    timeout: 20000,
    polling: 50,
  });
  result.page = await handle.jsonValue();
  result.ok = true;
} catch (error) {
  result.error = String(error);
} finally {
  if (browser) await browser.close().catch(() => {});
}
console.log(JSON.stringify(result, null, 2));
process.exit(result.ok ? 0 : 1);
