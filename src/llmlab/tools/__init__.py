"""Tools the assistant can call: an exact calculator, a sandboxed Python interpreter, retrieval; the runner
that executes calls between engine steps lives beside them."""
