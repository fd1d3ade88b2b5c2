"""Small shared helpers: atomic file writes, typed config dataclasses, progress bars, devices."""
