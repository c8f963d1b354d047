"""Software-defined assets; each body loads inputs, calls ``ai_assets.core``, and reports metadata."""
