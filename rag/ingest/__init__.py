"""Files -> chunks -> store: discovery and loading, chunking, uploads, the idempotent pipeline."""
