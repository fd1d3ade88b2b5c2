"""Seeing inside a model: attention maps, the logit lens, the reversal curse and AI-text detection."""
