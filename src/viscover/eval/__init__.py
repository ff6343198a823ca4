"""Evaluation on manifests: `viscover eval` (retrieval) and `viscover eval-related` (related items); the metrics
themselves are in viscover.metrics, shared with training."""
