"""``google.colab.userdata`` on a drivelab workspace: ``get(key)`` returns the workspace's secret.

Secrets are set with ``drivelab secrets set NAME`` (see
:mod:`drivelab.colab._secrets`); a missing one raises Colab's
``SecretNotFoundError('Secret NAME does not exist.')``, followed by a hint.
"""

from google.colab import errors as _errors

from drivelab.colab._calls import hints_shown
from drivelab.colab._secrets import find_secret
from drivelab.workspace import find_workspace

__all__ = ["NotebookAccessError", "SecretNotFoundError", "get"]


class NotebookAccessError(Exception):
    """Colab's: the notebook may not read the secret. Never raised here (a workspace's secrets are its notebooks')."""

    def __init__(self, key):
        super().__init__(f"Notebook does not have access to secret {key}")


class SecretNotFoundError(_errors.Error):
    """The secret is not set for this workspace (or is read from an environment variable that is not set)."""

    def __init__(self, key, hint=None):
        super().__init__(f"Secret {key} does not exist." + (f"\nhint: {hint}" if hint else ""))
        self.key = key


def get(key):
    """The value of secret ``key`` of the workspace this code runs in."""
    with hints_shown():
        found = find_secret(find_workspace(), key)
    if found is None:
        raise SecretNotFoundError(key, hint=f"set it for this workspace with `drivelab secrets set {key}` in a terminal (the value is not shown)")
    info, value = found
    if value is None:
        raise SecretNotFoundError(key, hint=f"it is read from ${info.env}, which is not set here")
    return value
