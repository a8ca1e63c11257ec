// Plays the default movie on reelserve's player page in a real headless Chromium for a while,
// as a viewer who then leaves, and reports whether playback ever stalled after it started; then
// seeks to ~70 % and checks playback resumes there.
//
// Usage: node tests/browser/paced_playback.mjs URL PLAY_SECONDS
//
// Prints one JSON object on stdout (the movie bytes received when PLAY_SECONDS had been played,
// the `waiting` events seen after playback started, media times, the seek) and exits 0 when playback ran for PLAY_SECONDS and the seek played, 1
// otherwise (the JSON then has "ok": false and "error"), 2 on bad usage. tests/movie_browser.rs
// runs it against a paced and an unpaced reelserve and compares what each sent (the access log).
// Same browser and flags as play_and_seek.mjs: Debian's Chromium, a fresh profile, loopback only.

import { PLAYER_FLAGS, runInChromium } from "./chromium.mjs";

const [url, playSecondsArg, ...rest] = process.argv.slice(2);
const PLAY_SECONDS = Number(playSecondsArg);
if (!url || !(PLAY_SECONDS > 0) || rest.length) {
  console.error("usage: node paced_playback.mjs URL PLAY_SECONDS");
  process.exit(2);
}

const DEADLINE_MS = 30000 + PLAY_SECONDS * 1000;
const SEEK_FRACTION = 0.7;
const started = Date.now();
const result = { ok: false, url, play_seconds: PLAY_SECONDS };

async function until(page, what, ms, predicate, arg) {
  try {
    const handle = await page.waitForFunction(predicate, arg, { timeout: ms, polling: 50 });
    return await handle.jsonValue();
  } catch (error) {
    throw new Error(`${what} (waited ${ms} ms)`);
  }
}

async function run(page) {
  // Every media request must reach the server (no answers from Chromium's HTTP cache).
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
  // What the browser received for the movie: the bytes a viewer costs in egress.
  const mediaRequests = new Set();
  const requestsSent = [];
  let received = 0;
  cdp.on("Network.requestWillBeSent", (e) => {
    if (e.type === "Media" || /\/movie\//.test(e.request.url)) {
      mediaRequests.add(e.requestId);
      requestsSent.push({ range: e.request.headers.Range || e.request.headers.range || null, at_ms: Date.now() - started });
    }
  });
  cdp.on("Network.dataReceived", (e) => {
    if (mediaRequests.has(e.requestId)) received += Math.max(e.encodedDataLength || 0, e.dataLength || 0);
  });

  const response = await page.goto(url, { waitUntil: "load", timeout: 15000 });
  if (!response || response.status() !== 200) throw new Error(`player page: HTTP ${response && response.status()}`);
  await until(page, "the movie list", 10000, () =>
    document.querySelectorAll("#movie-list button[data-url]").length > 0 &&
    document.getElementById("player").getAttribute("src") !== "/video");
  // Count `waiting` (playback stalled for data) only once playback has started.
  await page.evaluate(() => {
    const v = document.getElementById("player");
    window.__paced = { started: false, waiting: [] };
    v.addEventListener("playing", () => { window.__paced.started = true; });
    v.addEventListener("waiting", () => {
      if (window.__paced.started && !v.seeking) window.__paced.waiting.push(v.currentTime);
    });
    v.muted = true;
    return v.play();
  });
  await until(page, "playback to start", 10000, () => window.__paced.started);
  const playStarted = Date.now();
  result.start_ms = playStarted - started;
  await page.waitForTimeout(PLAY_SECONDS * 1000);
  // The viewer leaves here: what the browser has received so far is what they cost.
  result.media_bytes_received = received;
  result.media_requests_before_leaving = requestsSent.slice();
  result.played = await page.evaluate(() => {
    const v = document.getElementById("player");
    return { currentTime: v.currentTime, duration: v.duration, waiting: window.__paced.waiting };
  });
  result.waiting_after_start = result.played.waiting.length;

  const target = result.played.duration * SEEK_FRACTION;
  await page.evaluate((t) => { document.getElementById("player").currentTime = t; }, target);
  result.seek = await until(page, `playback to resume after seeking to ${target.toFixed(1)} s`, 15000,
    (t) => {
      const v = document.getElementById("player");
      return !v.paused && !v.seeking && v.currentTime >= t + 0.5 ? { target: t, currentTime: v.currentTime } : null;
    }, target);
  result.ok = true;
}

await runInChromium(result, run, {
  deadlineMs: DEADLINE_MS,
  flags: PLAYER_FLAGS,
  beforeFinish: (r) => {
    r.total_ms = Date.now() - started;
  },
});
