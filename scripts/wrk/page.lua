-- S4: how many player pages (GET /, a ~14 KB HTML file) can a server answer per second?
--
-- Usage: wrk -t2 -c64 -d10s -s scripts/wrk/page.lua http://127.0.0.1:PORT
-- The path is always "/", whatever the URL says: every server under test serves the player page
-- there (reelserve: the root's index.html; nginx: its index; the Node servers: FILE=the page).

dofile(debug.getinfo(1, "S").source:sub(2):match("^(.-)[^/]*$") .. "report.lua")

function init(args)
   wrk.path = "/"
end
