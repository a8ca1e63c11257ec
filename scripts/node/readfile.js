// How does the tutorial's first server do: fs.readFile of the whole movie per request, then response.end(data)?
//
// Usage: node scripts/node/readfile.js [PORT] [FILE]   (or env PORT, FILE; defaults 3000, movie/big.mp4)
// Every request, whatever its path, gets the whole FILE: the server reads all of it into one Buffer
// before the first byte goes out, so time to first byte grows with the file and memory grows with
// the file times the number of concurrent requests (fs.readFile also refuses files over 2 GiB).
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
    fs.readFile(file, (error, data) => {
      if (error) {
        response.writeHead(500, { "Content-Type": "text/plain" });
        response.end(String(error));
        return;
      }
      response.writeHead(200, { "Content-Type": contentType });
      response.end(data);
    });
  })
  .listen(port, "127.0.0.1", () => {
    console.log(`readfile.js listening on http://127.0.0.1:${port}/ (file ${file})`);
  });
