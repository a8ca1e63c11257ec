-- What did a wrk run measure, in a form scripts/bench.py can read? (done() as one JSON line)
--
-- Loaded by the scenario scripts next to it. wrk calls done() once, in its main Lua state, after
-- the run; it prints a single line starting with "WRK_JSON " (times in microseconds, as wrk keeps
-- them; "bytes" counts every byte read, heads included, partial responses at the end too).
-- Numbers use %.0f: byte counts pass 2^31 and LuaJIT's %d is not safe there.

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRK_JSON {"requests":%.0f,"bytes":%.0f,"duration_us":%.0f,' ..
      '"latency_p50_us":%.0f,"latency_p90_us":%.0f,"latency_p99_us":%.0f,' ..
      '"latency_mean_us":%.1f,"latency_max_us":%.0f,' ..
      '"errors":{"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f}}\n',
      summary.requests, summary.bytes, summary.duration,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.mean, latency.max,
      e.connect, e.read, e.write, e.status, e.timeout))
end
