"""Pure logic of the knowledge base. Nothing in this package imports dagster."""
