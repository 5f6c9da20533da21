"""The management API at /manage (its own OpenAPI schema at /manage/schema):

    schemas.py    request and response Structs (what the OpenAPI schema describes)
    access.py     the bearer guard (LLMGATE_MANAGEMENT_TOKEN), the error handlers and their OpenAPI description
    openapi.py    /manage/schema: Litestar's document with msgspec's schemas of the Structs
    projects.py   /manage/projects: create, list, get, update, delete (which revokes the project's tokens)
    tokens.py     /manage/tokens: create (the secret, once), list, get, update, revoke, rotate
    usage.py      /manage/usage: requests, tokens, cost, latency from the usage table, filtered and grouped
"""
