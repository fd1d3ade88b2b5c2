"""Bundled corpora shipped inside the package (read with ``llmlab.data.corpus``)."""
