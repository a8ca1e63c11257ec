// Plays the movie on reelserve's player page in a real headless Chromium, then seeks to ~70 %
// and checks that playback resumes there.
//
// Usage: node tests/browser/play_and_seek.mjs URL SCREENSHOT.png [--seek-must-fetch]
//
// --seek-must-fetch: also require that the seek made the browser fetch from the middle of the
// file (a Range request not starting at 0, answered 206). Only a movie too long to be buffered
// whole before the seek can promise that; the 1.4 MB sample is usually buffered whole.
//
// Prints one JSON object on stdout (what was seen: times, the media requests and their statuses)
// and exits 0 when every check passed, 1 when one failed (the JSON then has "ok": false and
// "error"), 2 on bad usage. tests/browser.rs runs it against a reelserve it started and checks
// the server's side (206 responses in the access log).
//
// The browser is Debian's Chromium (/usr/bin/chromium, or $CHROMIUM), never a downloaded
// build, with a new empty profile and the flags that keep it off the network (this machine has
// none but loopback).

import { runInChromium } from "./chromium.mjs";

const [url, screenshotPath, ...options] = process.argv.slice(2);
const SEEK_MUST_FETCH = options.includes("--seek-must-fetch");
if (!url || !screenshotPath || options.some((o) => o !== "--seek-must-fetch")) {
  console.error("usage: node play_and_seek.mjs URL SCREENSHOT.png [--seek-must-fetch]");
  process.exit(2);
}

// Whole run; tests/browser.rs also kills the process group after its own, longer, deadline.
const DEADLINE_MS = Number(process.env.PLAY_AND_SEEK_DEADLINE_MS || 45000);
// How far playback must get (seconds of media time) to count as "advancing".
const ADVANCE = 1.0;
// Where to seek, as a fraction of the duration.
const SEEK_FRACTION = 0.7;

const started = Date.now();
const result = {
  ok: false,
  url,
  screenshot: screenshotPath,
  steps: {},
  media_requests: [],
  console_errors: [],
};
const elapsed = () => Date.now() - started;
const step = (name, value) => {
  result.steps[name] = { at_ms: elapsed(), ...value };
};

// Resolves when `predicate()` (run in the page) returns a truthy value; fails with `what` after
// `ms`. Polls rather than waiting for one event so a missed event cannot hang the run.
async function until(page, what, ms, predicate, arg) {
  try {
    const handle = await page.waitForFunction(predicate, arg, { timeout: ms, polling: 50 });
    return await handle.jsonValue();
  } catch (error) {
    const state = await playerState(page).catch(() => null);
    throw new Error(`${what} (waited ${ms} ms; player: ${JSON.stringify(state)})`);
  }
}

function playerState(page) {
  return page.evaluate(() => {
    const v = document.getElementById("player");
    const ranges = [];
    for (let i = 0; i < v.buffered.length; i++) ranges.push([v.buffered.start(i), v.buffered.end(i)]);
    return {
      src: v.currentSrc,
      currentTime: v.currentTime,
      duration: v.duration,
      paused: v.paused,
      seeking: v.seeking,
      readyState: v.readyState,
      networkState: v.networkState,
      error: v.error ? { code: v.error.code, message: v.error.message } : null,
      decodedFrames: v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality().totalVideoFrames : null,
      buffered: ranges,
      status: document.getElementById("status").textContent,
      mode: document.getElementById("mode").textContent,
    };
  });
}

async function run(page) {
  page.on("console", (m) => {
    if (m.type() === "error") result.console_errors.push(m.text());
  });
  page.on("request", (r) => {
    if (r.resourceType() === "media") {
      result.media_requests.push({ url: r.url(), range: r.headers()["range"] || null, at_ms: elapsed() });
    }
  });
  page.on("response", (r) => {
    const entry = result.media_requests.find((m) => m.url === r.url() && m.status === undefined);
    if (entry) entry.status = r.status();
  });

  // Chromium's HTTP cache would answer a later range request from the bytes of an earlier
  // one (reelserve says max-age=3600), so the server would never see it: turn it off, so every
  // request the media stack makes reaches the server under test.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });

  const response = await page.goto(url, { waitUntil: "load", timeout: 15000 });
  step("page_loaded", { status: response && response.status() });
  if (!response || response.status() !== 200) throw new Error(`player page: HTTP ${response && response.status()}`);

  // The page asks /_reelserve/movies and switches the player to the default movie.
  const list = await until(page, "movie list from /_reelserve/movies", 10000, () => {
    const buttons = document.querySelectorAll("#movie-list button[data-url]");
    const mode = document.getElementById("mode").textContent;
    return buttons.length > 0 && mode !== "unknown"
      ? { movies: [...buttons].map((b) => b.getAttribute("data-url")), mode }
      : null;
  });
  step("movie_list", list);

  const meta = await until(page, "loadedmetadata with a finite duration", 10000, () => {
    const v = document.getElementById("player");
    return v.readyState >= 1 && isFinite(v.duration) && v.duration > 0
      ? { src: v.currentSrc, duration: v.duration, width: v.videoWidth, height: v.videoHeight }
      : null;
  });
  step("metadata", meta);

  // Muted playback is allowed without a user gesture (Chromium's autoplay policy).
  const play = await page.evaluate(async () => {
    const v = document.getElementById("player");
    v.muted = true;
    try {
      await v.play();
      return { played: true, currentTime: v.currentTime };
    } catch (e) {
      return { played: false, error: String(e) };
    }
  });
  step("play", play);
  if (!play.played) throw new Error(`play() was refused: ${play.error}`);

  const advanced = await until(page, `currentTime to pass ${ADVANCE} s`, 10000, (min) => {
    const v = document.getElementById("player");
    return !v.paused && v.currentTime >= min ? { currentTime: v.currentTime } : null;
  }, ADVANCE);
  step("advanced", advanced);

  const target = meta.duration * SEEK_FRACTION;
  const requestsBeforeSeek = result.media_requests.length;
  await page.evaluate((t) => {
    document.getElementById("player").currentTime = t;
  }, target);
  const seeked = await until(page, `seek to ${target.toFixed(2)} s to finish`, 10000, (t) => {
    const v = document.getElementById("player");
    return !v.seeking && v.currentTime >= t - 0.5 ? { currentTime: v.currentTime } : null;
  }, target);
  step("seeked", { target, ...seeked });

  // "Resumes there": not paused, the clock moves on from the target, and it did not jump back.
  const resumed = await until(page, "playback to resume after the seek", 10000, (t) => {
    const v = document.getElementById("player");
    return !v.paused && !v.seeking && v.currentTime >= t + 0.5 ? { currentTime: v.currentTime } : null;
  }, target);
  step("resumed", resumed);
  if (resumed.currentTime > target + 5) {
    throw new Error(`after seeking to ${target} s playback is at ${resumed.currentTime} s`);
  }
  // What the seek made the browser fetch: Range requests from the middle of the file.
  const afterSeek = result.media_requests.slice(requestsBeforeSeek);
  result.seek_requests = afterSeek;
  const fromMiddle = afterSeek.filter((m) => m.status === 206 && /^bytes=[1-9]/.test(m.range || ""));
  if (SEEK_MUST_FETCH && fromMiddle.length === 0) {
    throw new Error(`the seek fetched nothing from the middle of the file: ${JSON.stringify(afterSeek)}`);
  }

  // Pause so the picture in the screenshot is the frame the numbers describe.
  const final = await page.evaluate(() => {
    const v = document.getElementById("player");
    v.pause();
    return v.currentTime;
  });
  await page.screenshot({ path: screenshotPath, fullPage: true });
  step("screenshot", { currentTime: final });

  result.final = await playerState(page);
  if (result.final.error) throw new Error(`media error: ${JSON.stringify(result.final.error)}`);
  // The clock can run on audio alone: insist that video frames were decoded too.
  if (!(result.final.decodedFrames > 0)) throw new Error("no video frames were decoded");
  result.ok = true;
}

await runInChromium(result, run, {
  deadlineMs: DEADLINE_MS,
  onLaunch: (context) => {
    step("browser_started", { version: context.browser() ? context.browser().version() : null });
  },
  beforeFinish: (r) => {
    r.total_ms = elapsed();
  },
});
