"""Inputs nobody should send, sent on purpose (hypothesis, schemathesis), to the app in process.

    inputs.py             strategies: request bodies (JSON and not), headers, chunk boundaries, paths
    test_v1_inputs.py     /v1: no 5xx of llmgate's own, every error in the caller's shape
    test_manage_schema.py /manage against its own OpenAPI schema (schemathesis)
"""
