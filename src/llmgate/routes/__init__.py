"""Controllers: HTTP in, HTTP out, nothing else (the /v1 pipeline is llmgate/pipeline/).

    front.py        the hot path's way in: /v1 straight to the pipeline, the rest to Litestar
    health.py       /health, /health/deployments
    metrics.py      /metrics
"""
