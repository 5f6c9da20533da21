"""`python -m llmgate` → the CLI."""

from llmgate.cli import main

raise SystemExit(main())
