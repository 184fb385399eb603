"""drivelab: a Colab-style deep-learning workspace on a machine you own.

Layers (each a package; imports point down): ``cli`` -> ``lab`` / ``jobs`` ->
``train`` / ``data`` / ``drive`` / ``runtime`` -> core (``workspace``,
``errors``). Import the layer you need, e.g. ``from drivelab.train import train``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
