-- S1/S3: how fast does a server deliver a whole file, one GET after another on keep-alive connections?
--
-- Usage: wrk -t2 -c4 -d10s --timeout 60s -s scripts/wrk/whole.lua http://127.0.0.1:PORT/big.bin
--        (or give the path as an argument: ... http://127.0.0.1:PORT -- /big.bin)
-- The request is static (no request() function), so wrk spends no Lua time per request.

dofile(debug.getinfo(1, "S").source:sub(2):match("^(.-)[^/]*$") .. "report.lua")

function init(args)
   if args[1] then
      wrk.path = args[1]
   end
end
