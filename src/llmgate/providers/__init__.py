"""One module per upstream dialect: URLs and auth headers (translation lives beside them, never in the way).

    base.py               Provider protocol, capability flags, endpoint → capability
    openai_compatible.py  any OpenAI-compatible API: `{base_url}{path}`, `Authorization: Bearer`
    azure.py              Azure OpenAI: `/openai/deployments/{model}{path}?api-version=`, `api-key`
    anthropic.py          Anthropic: `/v1{path}`, `x-api-key` + `anthropic-version`
    gemini.py             Google AI Studio: `/v1beta/models/{model}:{method}`, `x-goog-api-key`
    vertex.py             Vertex AI: `/v1/projects/…/publishers/{google|anthropic}/models/{model}:{method}`, bearer
    bedrock.py            AWS Bedrock: `/model/{modelId}/converse[-stream]`, SigV4-signed (proxy/sigv4.py)
    presets.py            named OpenAI-compatible providers (groq, openrouter, ...): base URL, capabilities, quirks
    registry.py           ProviderConfig → Provider
"""
