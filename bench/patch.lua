-- bench/patch.lua - wrk script for the write workload of bench/server-load.sh.
--
-- Every request is PATCH <url> (the URL given to wrk, .../changes/{id}) with a
-- JSON body that writes ONE new small file, so every request makes a new commit
-- of that change (no base_commit_oid: concurrent writers are serialised and
-- re-applied by the server, never refused):
--
--   {"files":[{"path":"load/<tag>/t<thread>/f<counter>.txt","content":"<base64>"}]}
--
-- Paths are unique per (tag, thread, counter), so after the run the change's
-- tree holds exactly one new file per acknowledged PATCH; the driver counts them.
-- (Counters have gaps: wrk calls request() once on thread 1 before the run to
-- check for pipelining and never sends it, so t1 starts at f000002.)
-- Script arguments (after "--"): tag=TEXT (default "x"), plus those of
-- bench/status.lua (expect=2xx is the default). Statuses are counted and the
-- MESAD_BENCH line is printed by status.lua's done().

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "status.lua")

local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function b64(s)
   local out = {}
   for i = 1, #s, 3 do
      local a, b, c = s:byte(i, i + 2)
      local n = a * 65536 + (b or 0) * 256 + (c or 0)
      local c1 = math.floor(n / 262144) % 64
      local c2 = math.floor(n / 4096) % 64
      local c3 = math.floor(n / 64) % 64
      local c4 = n % 64
      out[#out + 1] = b64chars:sub(c1 + 1, c1 + 1) .. b64chars:sub(c2 + 1, c2 + 1) ..
         (b and b64chars:sub(c3 + 1, c3 + 1) or "=") .. (c and b64chars:sub(c4 + 1, c4 + 1) or "=")
   end
   return table.concat(out)
end

local status_init = init

function init(args)
   status_init(args)
   counter = 0
   tag = "x"
   for _, a in ipairs(args) do
      local k, v = a:match("^([%w_]+)=(.*)$")
      if k == "tag" then
         tag = v
      end
   end
   wrk.method = "PATCH"
   wrk.headers["Content-Type"] = "application/json"
end

function request()
   counter = counter + 1
   local path = string.format("load/%s/t%d/f%06d.txt", tag, id, counter)
   local content = b64(string.format("write %d of thread %d (%s)\n", counter, id, tag))
   local body = string.format('{"files":[{"path":"%s","content":"%s"}]}', path, content)
   return wrk.format("PATCH", nil, nil, body)
end
