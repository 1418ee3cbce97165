"""Sentence embeddings with a disk cache, and the index of known products that finds an item's nearest neighbours."""
