// Behaviour of the player page, html/movie_player.html (kept out of the page so its
// Content-Security-Policy can forbid inline scripts): the movie list, buffered ranges, stats.
(function () {
  "use strict";

  var player = document.getElementById("player");
  var list = document.getElementById("movie-list");
  var note = document.getElementById("movie-note");
  var modeEl = document.getElementById("mode");
  var statusEl = document.getElementById("status");
  var positionEl = document.getElementById("position");
  var bar = document.getElementById("buffered-bar");
  var playhead = document.getElementById("playhead");
  var stats = document.getElementById("stats");
  var statsList = document.getElementById("stats-list");
  var statsUpdated = document.getElementById("stats-updated");
  var movieInfo = document.getElementById("movie-info");
  var faststartWarning = document.getElementById("faststart-warning");
  /* What /_reelserve/movies says about each movie, by URL. */
  var moviesByUrl = {};

  /* Opened through a signed link (reelserve --signing-key-file), the page's own URL carries
     the token (exp, scope, ip, sig); every URL the page builds gets it too, so the movie list,
     the stats, the videos, their subtitles and posters are admitted as the page was. */
  var TOKEN = (function () {
    var from = new URLSearchParams(location.search), to = new URLSearchParams();
    ["exp", "scope", "ip", "sig"].forEach(function (name) {
      if (from.has(name)) to.set(name, from.get(name));
    });
    return to.has("sig") ? to.toString() : "";
  })();

  function signed(url) {
    if (!TOKEN) return url;
    return url + (url.indexOf("?") < 0 ? "?" : "&") + TOKEN;
  }

  /* The markup says preload="none", so nothing is fetched before this line can add the token
     (without a script, the video still plays from /video when clicked). */
  if (TOKEN) player.setAttribute("src", signed(player.getAttribute("src")));
  player.preload = "metadata";
  player.load();

  var STATS_FIELDS = [
    ["requests", "Requests", "count"],
    ["responses_206", "206 responses", "count"],
    ["open_connections", "Open connections", "count"],
    ["bytes_sent", "Bytes sent", "bytes"],
    ["bytes_sendfile", "via sendfile", "bytes"],
    ["bytes_writev_mapped", "via writev (mmap)", "bytes"],
    ["bytes_copied", "copied", "bytes"],
    ["sendfile_calls", "sendfile calls", "count"],
    ["bytes_paced", "paced", "bytes"]
  ];

  function setStatus(text, isError) {
    statusEl.textContent = text || "";
    statusEl.classList.toggle("error", !!isError);
  }

  function humanSize(n) {
    if (typeof n !== "number" || !isFinite(n) || n < 0) return "";
    var units = ["B", "KiB", "MiB", "GiB", "TiB"];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(n) : n.toFixed(n < 10 ? 2 : 1)) + " " + units[i];
  }

  function fmtCount(n) {
    return typeof n === "number" && isFinite(n) ? n.toLocaleString("en-US") : String(n);
  }

  function fmtTime(t) {
    if (typeof t !== "number" || !isFinite(t) || t < 0) return "–";
    var s = Math.floor(t), h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, sec = s % 60;
    var mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(sec).padStart(2, "0");
  }

  function getJSON(url, timeoutMs) {
    var ctl = typeof AbortController === "function" ? new AbortController() : null;
    var timer = ctl ? setTimeout(function () { ctl.abort(); }, timeoutMs || 5000) : null;
    return fetch(url, { cache: "no-store", headers: { "Accept": "application/json" },
                        signal: ctl ? ctl.signal : undefined })
      .then(function (res) {
        if (!res.ok) { var e = new Error("HTTP " + res.status); e.status = res.status; throw e; }
        return res.json();
      })
      .finally(function () { if (timer) clearTimeout(timer); });
  }

  /* ---- playback position and buffered ranges ---- */

  function updatePosition() {
    var d = player.duration, t = player.currentTime, parts = [], b = player.buffered;
    var known = isFinite(d) && d > 0;
    bar.querySelectorAll(".range").forEach(function (el) { el.remove(); });
    for (var i = 0; i < b.length; i++) {
      var s = b.start(i), e = b.end(i);
      parts.push(fmtTime(s) + "–" + fmtTime(e));
      if (known) {
        var r = document.createElement("div");
        r.className = "range";
        r.style.left = (100 * s / d) + "%";
        r.style.width = Math.max(0.3, 100 * (e - s) / d) + "%";
        bar.insertBefore(r, playhead);
      }
    }
    playhead.style.left = known ? (100 * Math.min(t / d, 1)) + "%" : "0";
    positionEl.textContent = "position " + fmtTime(t) + (known ? " / " + fmtTime(d) : "") +
      " · buffered: " + (parts.length ? parts.join(", ") : "nothing yet");
  }
  ["timeupdate", "progress", "durationchange", "loadedmetadata", "seeked", "emptied"]
    .forEach(function (ev) { player.addEventListener(ev, updatePosition); });

  player.addEventListener("loadedmetadata", function () {
    setStatus("Loaded " + player.currentSrc.replace(location.origin, "").split("?")[0] +
              (player.videoWidth ? " (" + player.videoWidth + "×" + player.videoHeight + ")" : ""));
  });
  player.addEventListener("waiting", function () { setStatus("Buffering…"); });
  player.addEventListener("playing", function () { setStatus("Playing"); });
  player.addEventListener("pause", function () { if (!player.ended) setStatus("Paused"); });
  player.addEventListener("ended", function () { setStatus("Ended"); });
  player.addEventListener("error", function () {
    var err = player.error, names = { 1: "aborted", 2: "network error", 3: "decode error", 4: "not found or unsupported" };
    setStatus("Cannot play " + (player.currentSrc || player.getAttribute("src")).replace(location.origin, "").split("?")[0] +
              (err ? ": " + (names[err.code] || "error " + err.code) : ""), true);
  });

  /* ---- movie list ---- */

  /* "3:05 · 1920×1080 · h264/aac · 4.1 Mbit/s" from what the server knows (unknown: left out). */
  function describe(m) {
    var parts = [];
    if (typeof m.duration_s === "number") parts.push(fmtTime(m.duration_s));
    if (typeof m.width === "number" && typeof m.height === "number") parts.push(m.width + "×" + m.height);
    var codecs = [m.video_codec, m.audio_codec].filter(function (c) { return typeof c === "string"; });
    if (codecs.length) parts.push(codecs.join("/"));
    if (typeof m.bitrate === "number") parts.push((m.bitrate / 1e6).toFixed(1) + " Mbit/s");
    return parts.join(" · ");
  }

  /* Poster, subtitle tracks, the description and the faststart warning of the movie at `url`. */
  function applyMovie(url) {
    var m = moviesByUrl[url] || null;
    player.querySelectorAll("track").forEach(function (t) { t.remove(); });
    if (m && typeof m.poster === "string" && m.poster.charAt(0) === "/") {
      player.setAttribute("poster", signed(m.poster));
    } else {
      player.removeAttribute("poster");
    }
    var subtitles = m && Array.isArray(m.subtitles) ? m.subtitles : [];
    subtitles.forEach(function (s, i) {
      if (!s || typeof s.url !== "string" || s.url.charAt(0) !== "/") return;
      var track = document.createElement("track");
      track.kind = "subtitles";
      track.src = signed(s.url);
      track.label = typeof s.label === "string" ? s.label : "Subtitles";
      if (typeof s.lang === "string") track.srclang = s.lang;
      if (i === 0) track.default = true;
      player.appendChild(track);
    });
    movieInfo.textContent = m ? describe(m) : "";
    faststartWarning.hidden = !(m && m.faststart === false);
  }

  function select(url, autoplay) {
    list.querySelectorAll("button[data-url]").forEach(function (btn) {
      btn.setAttribute("aria-pressed", btn.getAttribute("data-url") === url ? "true" : "false");
    });
    if (player.getAttribute("src") !== signed(url)) {
      var wasPlaying = !player.paused;
      setStatus("Loading " + url + "…");
      applyMovie(url);
      player.setAttribute("src", signed(url));
      player.load();
      if (wasPlaying || autoplay) {
        var p = player.play();
        if (p && p.catch) p.catch(function () {});
      }
    }
  }

  function renderMovies(data) {
    var movies = (data && Array.isArray(data.movies)) ? data.movies : [];
    list.textContent = "";
    moviesByUrl = {};
    movies.forEach(function (m) {
      if (!m || typeof m.url !== "string" || m.url.charAt(0) !== "/") return;
      moviesByUrl[m.url] = m;
      var li = document.createElement("li");
      var btn = document.createElement("button");
      btn.type = "button";
      btn.setAttribute("data-url", m.url);
      btn.setAttribute("aria-pressed", "false");
      var name = document.createElement("span");
      name.className = "name";
      name.textContent = typeof m.name === "string" && m.name ? m.name : m.url;
      var meta = document.createElement("span");
      meta.className = "meta";
      meta.textContent = describe(m) + (m.faststart === false ? " · not faststart" : "");
      name.appendChild(meta);
      var size = document.createElement("span");
      size.className = "size";
      size.textContent = humanSize(m.size);
      btn.title = m.url + (m.type ? " (" + m.type + ")" : "");
      btn.appendChild(name);
      btn.appendChild(size);
      btn.addEventListener("click", function () { select(m.url, true); });
      li.appendChild(btn);
      list.appendChild(li);
    });

    var count = list.children.length;
    note.textContent = count ? "" : "The server lists no movies; the player plays /video.";

    var def = data && typeof data.default === "string" ? data.default : null;
    var hasDef = def !== null && movies.some(function (m) { return m && m.url === def; });
    var untouched = player.paused && player.currentTime === 0;
    if (hasDef && untouched) {
      select(def, false);
    } else {
      var current = player.getAttribute("src").split("?")[0];
      select(current, false);
      applyMovie(current);
    }
  }

  note.textContent = "Loading the movie list…";
  getJSON(signed("/_reelserve/movies"), 5000)
    .then(function (data) {
      if (data && typeof data.mode === "string" && data.mode) modeEl.textContent = data.mode;
      renderMovies(data);
    })
    .catch(function (err) {
      list.textContent = "";
      note.textContent = "Couldn't load the movie list (" + (err && err.message ? err.message : "error") +
                         "); the player plays /video.";
    });

  /* ---- server stats ---- */

  var statsTimer = null;
  var statsFailures = 0;

  function renderStats(data) {
    statsList.textContent = "";
    STATS_FIELDS.forEach(function (f) {
      var v = data ? data[f[0]] : undefined;
      if (typeof v !== "number") return;
      var dt = document.createElement("dt");
      dt.textContent = f[1];
      var dd = document.createElement("dd");
      dd.id = "stat-" + f[0];
      dd.textContent = f[2] === "bytes" ? humanSize(v) : fmtCount(v);
      if (f[2] === "bytes") dd.title = fmtCount(v) + " bytes";
      statsList.appendChild(dt);
      statsList.appendChild(dd);
    });
    if (data && typeof data.mode === "string" && data.mode) modeEl.textContent = data.mode;
    statsUpdated.textContent = statsList.children.length
      ? "updated " + new Date().toLocaleTimeString("en-GB")
      : "no figures reported";
  }

  function pollStats() {
    getJSON(signed("/_reelserve/stats"), 1800)
      .then(function (data) {
        statsFailures = 0;
        stats.hidden = false;
        renderStats(data);
      })
      .catch(function (err) {
        if (err && (err.status === 404 || err.status === 403 || err.status === 410)) {
          stats.hidden = true;           /* stats disabled on this server */
          clearInterval(statsTimer);
          statsTimer = null;
          return;
        }
        statsFailures++;
        statsUpdated.textContent = "stats unavailable (" + (err && err.message ? err.message : "error") + ")";
        if (statsFailures >= 3) statsList.textContent = "";
      });
  }

  pollStats();
  statsTimer = setInterval(pollStats, 2000);
  updatePosition();
})();
