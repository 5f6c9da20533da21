-- Paced streaming chat completion: a model named paced-*, whose chunks the double sends 2 ms apart, each its own
-- write, as a real model's tokens arrive (wrk times the whole SSE response). Bearer from WRK_KEY.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local report = dofile(dir .. "report.lua")
report.setup_chat(true, "paced-gpt-4o-mini")
done = report.done
