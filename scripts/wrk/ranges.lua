-- S2: how fast are random 1 MiB range requests over a big file (players seeking, download managers)?
--
-- Usage: wrk -t2 -c64 -d10s -s scripts/wrk/ranges.lua http://127.0.0.1:PORT/big.bin -- SIZE [LEN] [FORM]
--   SIZE  the file's length in bytes (required; or env RANGE_FILE_SIZE)
--   LEN   bytes per range (default 1048576; or env RANGE_LEN)
--   FORM  "closed" (default): Range: bytes=a-b, exactly LEN bytes per response;
--         "open": Range: bytes=a-, for servers that choose the length themselves, as the tutorial's
--         Express handler does (it answers 1,000,001 bytes and cannot parse a-b at all).
-- Each thread draws its offsets from its own fixed seed, so every server gets the same requests.

dofile(debug.getinfo(1, "S").source:sub(2):match("^(.-)[^/]*$") .. "report.lua")

local size, len, form

function setup(thread)
   setup_count = (setup_count or 0) + 1
   thread:set("seed", setup_count)
end

function init(args)
   size = tonumber(args[1] or os.getenv("RANGE_FILE_SIZE"))
   len = tonumber(args[2] or os.getenv("RANGE_LEN") or 1048576)
   form = args[3] or os.getenv("RANGE_FORM") or "closed"
   if not size or not len or size < len or (form ~= "closed" and form ~= "open") then
      error("ranges.lua: usage: wrk ... -s ranges.lua URL -- SIZE [LEN] [closed|open] (got size=" ..
            tostring(args[1]) .. ", len=" .. tostring(args[2]) .. ", form=" .. tostring(args[3]) .. ")")
   end
   math.randomseed(seed or 1)
end

function request()
   -- Any offset, not page-aligned: servers that map pages must cope with unaligned starts.
   local first = math.floor(math.random() * (size - len + 1))
   local range
   if form == "open" then
      range = string.format("bytes=%.0f-", first)
   else
      range = string.format("bytes=%.0f-%.0f", first, first + len - 1)
   end
   return wrk.format(nil, nil, { Range = range })
end
