"""``google.colab.errors``: the base class of Colab's own exceptions, and Colab's classes derived from it.

``userdata.SecretNotFoundError``, ``files.BrowserRequiredError`` and the
errors of ``auth`` derive from :class:`Error`.
"""

__all__ = ["AuthorizationError", "Error", "RuntimeManagementError"]


class Error(Exception):
    """Base class of the errors ``google.colab`` raises."""


class AuthorizationError(Error):
    """``auth.authenticate_user()`` found no Google credentials to use."""


class RuntimeManagementError(Error):
    """Colab's, for a runtime that could not be managed; never raised here."""
