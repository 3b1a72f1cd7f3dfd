-- bench/status.lua - wrk script used by bench/server-load.sh for every
-- workload: counts the HTTP status of every response (per wrk thread) and, at
-- the end, prints one machine-readable line that the driver parses:
--
--   MESAD_BENCH requests=N duration_us=N rps=R p50_us=N p99_us=N mean_us=R
--     max_us=N err_connect=N err_read=N err_write=N err_timeout=N
--     unexpected=N statuses=200:N,304:N,...
--
-- Script arguments (after wrk's "--"): expect=2xx (default) or expect=NNN, the
-- status every response must have; any other status counts as "unexpected".
-- Latencies are wrk's (microseconds, from request written to response read).
-- The first few unexpected answers of each thread are kept and printed before
-- that line as "MESAD_BENCH_SAMPLE <status> <body, first 300 bytes>".
-- bench/patch.lua builds on this file.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("id", #threads)
end

function init(args)
   statuses = {}
   samples = {}
   expect = "2xx"
   for _, a in ipairs(args) do
      local k, v = a:match("^([%w_]+)=(.*)$")
      if k == "expect" then
         expect = v
      end
   end
end

local function expected(status, want)
   if want == "2xx" then
      return status >= 200 and status < 300
   end
   return status == tonumber(want)
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
   if #samples < 3 and not expected(status, expect) then
      local b = (body or ""):sub(1, 300):gsub("[\r\n]", " ")
      table.insert(samples, string.format("%d %s", status, b))
   end
end

function done(summary, latency, requests)
   local counts, want = {}, "2xx"
   for _, t in ipairs(threads) do
      want = t:get("expect") or want
      for _, line in ipairs(t:get("samples") or {}) do
         io.write("MESAD_BENCH_SAMPLE " .. line .. "\n")
      end
      for code, n in pairs(t:get("statuses") or {}) do
         counts[code] = (counts[code] or 0) + n
      end
   end
   local codes, unexpected = {}, 0
   for code, _ in pairs(counts) do
      table.insert(codes, code)
   end
   table.sort(codes)
   local parts = {}
   for _, code in ipairs(codes) do
      table.insert(parts, string.format("%d:%d", code, counts[code]))
      if not expected(code, want) then
         unexpected = unexpected + counts[code]
      end
   end
   local e = summary.errors
   io.write(string.format(
      "MESAD_BENCH requests=%d duration_us=%d rps=%.2f p50_us=%d p99_us=%d mean_us=%.1f " ..
      "max_us=%d err_connect=%d err_read=%d err_write=%d err_timeout=%d unexpected=%d statuses=%s\n",
      summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(99), latency.mean, latency.max,
      e.connect, e.read, e.write, e.timeout, unexpected,
      #parts > 0 and table.concat(parts, ",") or "none"))
end
