"""Data: the bundled corpus and its standard split (``corpus``), and the cleaning pipeline (``pipeline``)."""
