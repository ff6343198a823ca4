"""The catalogue: items, images by content hash, labels per task, domains, boards and the engagement log, in
SQLite or PostgreSQL (store), filled from folders and manifests (sources, ingest)."""
