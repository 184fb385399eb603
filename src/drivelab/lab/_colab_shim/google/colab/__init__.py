"""drivelab's stand-in for ``google.colab``, on kernels the lab starts when the real one is absent.

Only ``google.colab.drive`` (``mount``, ``flush_and_unmount``) is provided;
see docs/lab.md for what is and is not covered.
"""

__all__ = ["drive"]

IS_DRIVELAB = True
