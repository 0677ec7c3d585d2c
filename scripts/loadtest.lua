-- wrk script for scripts/loadtest.sh: sends GET requests carrying the pre-generated
-- WIT + WPT header sets written by the `loadtest_target` example.
--
--   wrk -t <T> ... -s scripts/loadtest.lua <url> -- <headers-file> <auth|open> <T>
--
-- The file's first line is the WIT; every further line is one WPT. Thread k of T takes
-- the WPTs on lines k, k+T, k+2T, ... so no WPT is sent twice. In `auth` mode a thread
-- that runs out of WPTs keeps sending its last one (the server then refuses it as a
-- replay) and reports `exhausted=1`: that run must not be used. In `open` mode the same
-- headers are sent (so both runs put the same bytes on the wire) and reused freely.
--
-- done() prints one machine-readable line:
--   RESULT requests=.. duration_s=.. rps=.. non2xx=.. socket_errors=.. p50_us=.. p99_us=.. used=.. exhausted=0|1

local threads = {}
local counter = 0

function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

function init(args)
   local path, mode = args[1], args[2]
   nthreads = tonumber(args[3])
   if path == nil or (mode ~= "auth" and mode ~= "open") or nthreads == nil then
      error("usage: wrk -t <T> ... -s loadtest.lua <url> -- <headers-file> <auth|open> <T>")
   end
   reuse = (mode == "open")
   wpts = {}
   local n, i = 0, 0
   for line in io.lines(path) do
      if i == 0 then
         wit = line
      elseif (i - 1) % nthreads == id then
         n = n + 1
         wpts[n] = line
      end
      i = i + 1
   end
   count = n
   nextwpt = 1
   used = 0
   exhausted = 0
   wrk.headers["Workload-Identity-Token"] = wit
end

function request()
   if nextwpt > count then
      if reuse then
         nextwpt = 1
      else
         exhausted = 1
         nextwpt = count
      end
   end
   wrk.headers["Authorization"] = "WPT " .. wpts[nextwpt]
   nextwpt = nextwpt + 1
   used = used + 1
   return wrk.format("GET")
end

function done(summary, latency, requests)
   local used_total, exhausted_any = 0, 0
   for _, t in ipairs(threads) do
      used_total = used_total + (t:get("used") or 0)
      if t:get("exhausted") == 1 then
         exhausted_any = 1
      end
   end
   local e = summary.errors
   local secs = summary.duration / 1e6
   io.write(string.format(
      "RESULT requests=%d duration_s=%.3f rps=%.1f non2xx=%d socket_errors=%d p50_us=%d p99_us=%d used=%d exhausted=%d\n",
      summary.requests, secs, summary.requests / secs, e.status,
      e.connect + e.read + e.write + e.timeout,
      latency:percentile(50), latency:percentile(99), used_total, exhausted_any))
end
