"""The safety guard: decoding obfuscations, classifying harmful asks and instruction-like text in untrusted
content, and the red-team suite that measures it."""
