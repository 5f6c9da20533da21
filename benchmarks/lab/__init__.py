"""The comparative lab: what llmgate adds to a request, measured side by side with the upstream double, and the gate.

Not part of the product (the wheel holds src/llmgate only); run it from the repository's root as
`python -m benchmarks.lab` (cli.py has the options; .ci/perf-gate runs it against benchmarks/baseline/).

    cli.py        the options; measure → report → --json/--plot → --gate
    session.py    one invocation: the double, the targets, the rounds, the report, the gate's re-measurement
    scenarios.py  direct, llmgate per scenario (passthrough, routing, token, token-budget, no-usage-log), other URLs
    runner.py     rounds, targets interleaved; start-up, warm-up, one load run per case, memory, idle CPU
    loadgen.py    wrk when installed, else asyncload.py (the built-in generator); CPU of each side
    summary.py    medians, ratios to direct paired per round, the JSON document
    gate.py       baseline vs run on ratios to direct: which figure regressed (pure)
    microgate.py  the same for the pytest-benchmark suites (benchmarks/gate.py runs them)
    report.py     rich progress bars and tables; the machine's description
    footprint.py  import time of llmgate.app (python -X importtime) and the installed size
    plot.py       latency CDFs (matplotlib, from the dev dependency group)
    processes.py  children in their own process groups; /proc: CPU, RSS/PSS of a tree
    stats.py      percentiles, CDF points, medians
"""
