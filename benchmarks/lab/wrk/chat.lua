-- Non-streaming chat completion. Bearer from WRK_KEY. Used by the lab (benchmarks/lab).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local report = dofile(dir .. "report.lua")
report.setup_chat(false)
done = report.done
