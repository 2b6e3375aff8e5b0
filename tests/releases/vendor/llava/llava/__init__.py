"""Empty on purpose: LLaVA's own package __init__ imports its models (see PROVENANCE.md)."""
