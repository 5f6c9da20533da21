"""`python -m benchmarks.lab`: see cli.py."""

from benchmarks.lab.cli import main

raise SystemExit(main())
