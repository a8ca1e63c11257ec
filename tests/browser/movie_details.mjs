// Opens reelserve's player page in a real headless Chromium and reports what it shows about
// the default movie: its text tracks (and whether their cues loaded), the poster, the
// description line (duration, resolution) and whether the not-faststart warning is visible.
//
// Usage: node tests/browser/movie_details.mjs URL
//
// Prints one JSON object on stdout and exits 0 when the page loaded and the first text track's
// cues arrived, 1 otherwise (the JSON then has "ok": false and "error"), 2 on bad usage.
// tests/movie_browser.rs runs it against a reelserve it started and checks the details.
// Same browser and flags as play_and_seek.mjs: Debian's Chromium, a fresh profile, loopback only.

import { runInChromium } from "./chromium.mjs";

const [url, ...rest] = process.argv.slice(2);
if (!url || rest.length) {
  console.error("usage: node movie_details.mjs URL");
  process.exit(2);
}

const DEADLINE_MS = 40000;
const result = { ok: false, url };

async function run(page) {
  const response = await page.goto(url, { waitUntil: "load", timeout: 15000 });
  if (!response || response.status() !== 200) throw new Error(`player page: HTTP ${response && response.status()}`);
  // The page reads /_reelserve/movies, selects the default movie and adds its tracks; the
  // default track is shown, so its cues are fetched and parsed.
  const handle = await page.waitForFunction(() => {
    const v = document.getElementById("player");
    const t = v.textTracks;
    if (!(v.readyState >= 1) || t.length === 0 || !t[0].cues || t[0].cues.length === 0) return null;
    return {
      src: v.currentSrc,
      poster: v.getAttribute("poster"),
      tracks: [...v.textTracks].map((track) => ({
        kind: track.kind,
        label: track.label,
        language: track.language,
        mode: track.mode,
        cues: track.cues ? [...track.cues].map((c) => c.text) : null,
      })),
      track_elements: v.querySelectorAll("track[kind=subtitles]").length,
      info: document.getElementById("movie-info").textContent,
      warning_visible: !document.getElementById("faststart-warning").hidden &&
        document.getElementById("faststart-warning").offsetHeight > 0,
    };
  }, null, { timeout: 20000, polling: 100 });
  Object.assign(result, await handle.jsonValue());
  result.ok = true;
}

await runInChromium(result, run, { deadlineMs: DEADLINE_MS });
