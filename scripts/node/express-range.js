// How does the tutorial's Express range handler do: 1 MB 206 responses piped from fs.createReadStream({start, end})?
//
// Usage: node scripts/node/express-range.js [PORT] [FILE]   (or env PORT, FILE; defaults 3000, movie/big.mp4)
// Needs `npm ci --prefix scripts/node` (express). Serves FILE at /video, as the tutorial does; it
// listens on 127.0.0.1 only.
//
// Faithful to the tutorial, including its flaws, because they are what is being compared:
// - start is every digit of the header glued together: Number(range.replace(/\D/g, "")). That
//   works for what a <video> element sends ("bytes=123-" -> 123) but not for a closed range:
//   "bytes=100-199" -> start 100199 (the wrong bytes), and once the glued number is past the end,
//   as for any 1 MiB range of a 1 GiB file ("bytes=1048576-2097151" -> 10485762097151), start > end,
//   Content-Length goes negative and Node closes the connection with no response at all. So the
//   comparison drives it with open-ended ranges only (scripts/wrk/ranges.lua ... open).
// - end = Math.min(start + 1e6, size - 1) is inclusive: 1,000,001 bytes per response, not 1 MB.
// - suffix ranges ("bytes=-500") become start = 500; multiple ranges are glued like closed ones;
//   no 416 for a start past the end; no If-Range, no ETag.
// - the original sent the 400 for a missing Range but did not return, then crashed on
//   range.replace; here it returns (the only change), so requests without Range get the 400 only.
"use strict";

const fs = require("fs");
const express = require("express");

const port = Number(process.argv[2] || process.env.PORT || 3000);
const videoPath = process.argv[3] || process.env.FILE || "movie/big.mp4";

const app = express();

app.get("/video", function (req, res) {
  const range = req.headers.range;
  if (!range) {
    res.status(400).send("Requires Range header");
    return;
  }
  const videoSize = fs.statSync(videoPath).size;
  const CHUNK_SIZE = 10 ** 6; // 1MB
  const start = Number(range.replace(/\D/g, ""));
  const end = Math.min(start + CHUNK_SIZE, videoSize - 1);
  const contentLength = end - start + 1;
  const headers = {
    "Content-Range": `bytes ${start}-${end}/${videoSize}`,
    "Accept-Ranges": "bytes",
    "Content-Length": contentLength,
    "Content-Type": "video/mp4",
  };
  res.writeHead(206, headers);
  const videoStream = fs.createReadStream(videoPath, { start, end });
  videoStream.pipe(res);
});

app.listen(port, "127.0.0.1", function () {
  console.log(`express-range.js listening on http://127.0.0.1:${port}/video (file ${videoPath})`);
});
