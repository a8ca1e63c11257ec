// How does the tutorial's streaming server do: fs.createReadStream, response.write on each 'data' event, then end?
//
// Usage: node scripts/node/stream.js [PORT] [FILE]   (or env PORT, FILE; defaults 3000, movie/big.mp4)
// Every request, whatever its path, gets the whole FILE in 64 KiB chunks (Transfer-Encoding: chunked,
// no Content-Length). Faithful to the tutorial, it ignores response.write()'s return value: there is
// no backpressure, so a client slower than the disk makes the server buffer the file in memory.
// Range headers are ignored. It listens on 127.0.0.1 only.
"use strict";

const fs = require("fs");
const http = require("http");
const path = require("path");

const port = Number(process.argv[2] || process.env.PORT || 3000);
const file = process.argv[3] || process.env.FILE || "movie/big.mp4";
const contentType = path.extname(file) === ".html" ? "text/html; charset=utf-8" : "video/mp4";

http
  .createServer((request, response) => {
    const stream = fs.createReadStream(file);
    response.writeHead(200, { "Content-Type": contentType });
    stream.on("data", (chunk) => {
      response.write(chunk);
    });
    stream.on("end", () => {
      response.end();
    });
    stream.on("error", (error) => {
      response.destroy(error);
    });
  })
  .listen(port, "127.0.0.1", () => {
    console.log(`stream.js listening on http://127.0.0.1:${port}/ (file ${file})`);
  });
