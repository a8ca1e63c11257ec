-- S5 (optional): what does a browser's seek cost a server: a new connection, a range, a few bytes, then gone?
--
-- Usage: wrk -t2 -c64 -d10s -s scripts/wrk/seek.lua http://127.0.0.1:PORT/big.bin -- SIZE [LEN]
--   SIZE  the file's length in bytes (required; or env RANGE_FILE_SIZE)
--   LEN   bytes read per seek (default 262144; or env SEEK_LEN)
--
-- The approximation: a browser sends "Range: bytes=N-" (open-ended) and, after the first chunk
-- arrives, drops the connection and seeks again. wrk cannot abandon a response half-way (it reads
-- every response to its end), so an open-ended range would stream the rest of a 1 GiB file each
-- time. Instead each request asks for a short closed range, "bytes=N-(N+256KiB-1)", with
-- "Connection: close": the server sees the same shape (accept, open, range, first bytes, close),
-- minus the reset a real abort causes.

dofile(debug.getinfo(1, "S").source:sub(2):match("^(.-)[^/]*$") .. "report.lua")

local size, len

function setup(thread)
   setup_count = (setup_count or 0) + 1
   thread:set("seed", setup_count)
end

function init(args)
   size = tonumber(args[1] or os.getenv("RANGE_FILE_SIZE"))
   len = tonumber(args[2] or os.getenv("SEEK_LEN") or 262144)
   if not size or not len or size < len then
      error("seek.lua: usage: wrk ... -s seek.lua URL -- SIZE [LEN]")
   end
   math.randomseed(seed or 1)
end

function request()
   local first = math.floor(math.random() * (size - len + 1))
   return wrk.format(nil, nil, {
      Range = string.format("bytes=%.0f-%.0f", first, first + len - 1),
      Connection = "close",
   })
end
