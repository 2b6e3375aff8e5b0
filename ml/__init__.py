"""Training package for SkinVL-style models: release reader, stages, evaluation and CLI.

It imports torch, transformers and peft only; never Django and never the database, so a GPU
machine installs it alone and talks to the platform over its REST API.
"""
