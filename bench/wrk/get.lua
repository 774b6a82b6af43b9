-- GET one path with the headers given as "Name: value" arguments after `--`.
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:match("@(.*/)") .. "?.lua"
require "report"

function init(args)
  for _, header in ipairs(args) do
    local name, value = header:match("^([^:]+):%s*(.*)$")
    wrk.headers[name] = value
  end
end
