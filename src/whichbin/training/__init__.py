"""Training: backbones, embedding cache, heads, fine-tuning, export. Only bundle.py is
importable without torch."""
