"""Modality from pixels: meaningful features (stain deconvolution, field shape, texture,
skin colour, flat colour), a small calibrated model shipped as JSON, the real-image
development set it was trained on (``manifest.json``, cut by ``devset``) and its training
script (``train``). No Django."""
