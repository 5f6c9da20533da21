-- Streaming chat completion ("stream":true; wrk times the whole SSE response). Bearer from WRK_KEY.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local report = dofile(dir .. "report.lua")
report.setup_chat(true)
done = report.done
