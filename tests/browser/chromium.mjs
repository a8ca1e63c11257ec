// The browser every test here drives: Debian's Chromium (/usr/bin/chromium, or $CHROMIUM),
// never a downloaded one, started headless with the flags this closed sandbox needs (no
// background networking, no QUIC, no sandbox as root).

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
