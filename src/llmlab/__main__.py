"""``python -m llmlab`` is the same as the ``llmlab`` command."""

from llmlab.cli import main

raise SystemExit(main())
