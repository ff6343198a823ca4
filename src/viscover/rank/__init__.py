"""Learned ranking of related-item candidates from engagement logs (position-debiased), with LightGBM."""
