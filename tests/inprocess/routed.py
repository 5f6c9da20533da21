"""A configuration with one of each routing shape, on the upstream double run in process: key rotation and a
revoked key, a fallback, a broken deployment, Azure, Anthropic by prefix, and an embeddings-only provider."""

from tests.inprocess.upstream import DOUBLE_URL

ROUTED_KEYS = ("sk-rot-one-000000000001", "sk-rot-two-000000000002", "sk-rot-three-00000000003")
"""The `rotating` provider's keys, in the order they are given."""
AZURE_KEY = "azure-secret-key-000000001"

ROUTED = f"""
[routing]
backoff_base_ms = 1

[[providers]]
name = "rotating"
base_url = "{DOUBLE_URL}/rot/v1"
api_keys = {list(ROUTED_KEYS)!r}

[[providers]]
name = "revoking"
base_url = "{DOUBLE_URL}/_mock/reject-key=revoked/v1"
api_keys = ["sk-revoked-key-0000000001", "sk-fine-key-00000000000002"]

[[providers]]
name = "spare"
base_url = "{DOUBLE_URL}/spare/v1"

[[providers]]
name = "broken"
base_url = "{DOUBLE_URL}/_mock/status=503/v1"

[[providers]]
name = "azure"
kind = "azure"
base_url = "{DOUBLE_URL}/az"
api_key = "{AZURE_KEY}"
api_version = "2024-06-01"

[[providers]]
name = "anthropic"
kind = "anthropic"
base_url = "{DOUBLE_URL}/anth"
api_key = "sk-ant-test-00000000000000"
models = ["claude-*"]

[[providers]]
name = "embedder"
base_url = "{DOUBLE_URL}/emb/v1"
capabilities = ["embeddings"]

[[models]]
name = "rotated"
deployments = [{{ provider = "rotating", model = "upstream-name" }}]

[[models]]
name = "revoked"
deployments = [{{ provider = "revoking" }}]

[[models]]
name = "primary"
deployments = [{{ provider = "broken" }}]
fallbacks = ["backup"]

[[models]]
name = "backup"
deployments = [{{ provider = "spare" }}]

[[models]]
name = "down"
deployments = [{{ provider = "broken", model = "down" }}]

[[models]]
name = "gpt-4o"
deployments = [{{ provider = "azure", model = "my-gpt4o-deployment" }}]

[[models]]
name = "text-embedding-3-small"
deployments = [{{ provider = "embedder" }}]
"""
