"""`llmgate bench`: what llmgate adds to a request, measured side by side with the upstream double, and the gate.

    cli.py        the `llmgate bench` options; imports nothing heavy (the gateway's CLI loads it)
    session.py    one invocation: the double, the targets, measure → report → --json/--plot → --gate
    scenarios.py  direct, llmgate per scenario (passthrough, routing, token, token-budget, usage-log), other URLs
    runner.py     rounds, targets interleaved; start-up, warm-up, one load run per case, memory, idle CPU
    loadgen.py    wrk when installed, else asyncload.py (the built-in generator); CPU of each side
    summary.py    medians, ratios to direct paired per round, the JSON document
    gate.py       baseline vs run on ratios to direct: which figure regressed (pure)
    report.py     rich progress bars and tables; the machine's description
    footprint.py  import time of llmgate.app (python -X importtime) and the installed size
    plot.py       latency CDFs (matplotlib, the `bench` extra)
    processes.py  children in their own process groups; /proc: CPU, RSS/PSS of a tree
    stats.py      percentiles, CDF points, medians
"""
