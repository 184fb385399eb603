"""``google.colab.errors``: the base class of Colab's own exceptions (``userdata.SecretNotFoundError`` derives from it)."""

__all__ = ["Error"]


class Error(Exception):
    """Base class of the errors ``google.colab`` raises."""
