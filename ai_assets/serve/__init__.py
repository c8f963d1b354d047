"""`ai-assets serve`: the served index's front door (HTTP API, MCP, the ask page). A reader: it
imports no Dagster run machinery, and follows each knowledge base's ``served`` tag."""
