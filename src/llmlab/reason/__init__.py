"""System-2 reasoning over any generator: direct answers, chain of thought, self-consistency and Tree of
Thoughts, measured on checkable tasks such as the Game of 24."""
