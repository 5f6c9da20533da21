"""pipeline/translate.py loads only for requests that need it: the app loads neither llmgate.translate nor tiktoken."""

from __future__ import annotations

import subprocess
import sys


def test_app_import_loads_no_translation_or_tokenizer() -> None:
    code = ("import sys, llmgate.app, llmgate.pipeline.v1; "
            "print(sorted(m for m in sys.modules if m.startswith(('llmgate.translate', 'llmgate.pipeline.translate',"
            " 'llmgate.usage.counting', 'tiktoken'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
