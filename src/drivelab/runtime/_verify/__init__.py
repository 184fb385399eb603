"""Proving PyTorch works here: ``verify`` runs ``script`` in a fresh interpreter and judges what it
found; ``require`` is the cheap check that torch is there at all."""
