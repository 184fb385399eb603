"""``google.colab.auth.authenticate_user(clear_output=True, project_id=None)`` with this machine's Google credentials.

Colab signs the notebook's user in. Here the credentials are the machine's
Application Default Credentials, which Google's client libraries (BigQuery,
Cloud Storage, ...) find by themselves: ``authenticate_user()`` checks with
google-auth (``google.auth.default()``) that there are some, and prints a line
saying which project they use. ``project_id`` sets ``$GOOGLE_CLOUD_PROJECT``
and ``$GOOGLE_CLOUD_QUOTA_PROJECT`` for this process and what it starts.
``clear_output`` is accepted and has nothing to clear.

- google-auth not installed: :class:`GoogleAuthMissingError`, an
  ``errors.AuthorizationError`` that is also a ``ModuleNotFoundError``, so code
  written as ``try: ... except ImportError:`` for machines without Colab keeps
  working.
- no credentials found: ``errors.AuthorizationError``; both messages say to
  sign in with ``gcloud auth application-default login``.
"""

import os as _os

from google.colab import errors as _errors

__all__ = ["GoogleAuthMissingError", "authenticate_user"]

_SIGN_IN = "gcloud auth application-default login"


class GoogleAuthMissingError(_errors.AuthorizationError, ModuleNotFoundError):
    """google-auth, which finds this machine's credentials, is not installed."""

    def __init__(self, message):
        super().__init__(message)
        self.name = "google.auth"


def authenticate_user(clear_output=True, project_id=None):
    """Check that this machine has Google credentials for the notebook's client libraries to use; print which project."""
    try:
        import google.auth
        import google.auth.exceptions
    except ImportError:
        raise GoogleAuthMissingError(
            "auth.authenticate_user() uses this machine's Google credentials through google-auth, which is not installed here.\n"
            f"hint: run `pip install google-auth` (in a notebook: %pip install google-auth), then sign in once in a terminal "
            f"of this machine with `{_SIGN_IN}` (the Google Cloud CLI)"
        ) from None
    try:
        _credentials, found_project = google.auth.default()
    except google.auth.exceptions.GoogleAuthError as exc:
        raise _errors.AuthorizationError(
            f"auth.authenticate_user() found no Google credentials on this machine: {exc}\n"
            f"hint: sign in once in a terminal of this machine with `{_SIGN_IN}` (the Google Cloud CLI), or set "
            "GOOGLE_APPLICATION_CREDENTIALS to a service account's key file; then run this again"
        ) from None
    if project_id:
        _os.environ["GOOGLE_CLOUD_PROJECT"] = str(project_id)
        _os.environ["GOOGLE_CLOUD_QUOTA_PROJECT"] = str(project_id)
    project = project_id or found_project
    print(f"Using this machine's Google credentials (Application Default Credentials), project: {project or 'none set'}")
