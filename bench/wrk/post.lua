-- POST a JSON body with a unique Idempotency-Key per request.
-- Arguments after `--`: body file, run prefix, then "Name: value" headers. "{supplier}" in the
-- body is replaced by supplier ids in turn (BENCH_SUPPLIERS: comma-separated), so no supplier's
-- limit fills up.
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:match("@(.*/)") .. "?.lua"
require "report"

local threads = {}
local counter = 0
local body = ""
local prefix = ""
local suppliers = {}

function setup(thread)
  thread:set("thread_id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1], "r"))
  body = file:read("*a")
  file:close()
  prefix = args[2]
  for i = 3, #args do
    local name, value = args[i]:match("^([^:]+):%s*(.*)$")
    wrk.headers[name] = value
  end
  wrk.headers["Content-Type"] = "application/json"
  for id in (os.getenv("BENCH_SUPPLIERS") or "1"):gmatch("[^,]+") do
    table.insert(suppliers, id)
  end
end

function request()
  counter = counter + 1
  wrk.headers["Idempotency-Key"] = prefix .. "-" .. tostring(thread_id) .. "-" .. counter
  local supplier = suppliers[(counter % #suppliers) + 1]
  return wrk.format("POST", nil, nil, (body:gsub("{supplier}", supplier)))
end
