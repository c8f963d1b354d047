"""ai_assets: a Dagster project that keeps a retrieval-augmented knowledge base fresh and honest."""
