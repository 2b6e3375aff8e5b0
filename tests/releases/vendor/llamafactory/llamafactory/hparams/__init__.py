"""Empty on purpose: importing the pinned data modules must not run LLaMA-Factory's own package set-up (see PROVENANCE.md)."""
