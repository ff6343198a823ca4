"""Evaluation: retrieval metrics (Recall@K, MAP@R) and the manifest-based `viscover eval`."""
