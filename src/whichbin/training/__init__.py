"""Training: backbones, embedding cache, heads, fine-tuning, export. Bundle metadata and the
classifier that runs a bundle are in ``whichbin.inference``."""
