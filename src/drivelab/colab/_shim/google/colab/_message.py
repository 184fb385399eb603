"""``google.colab._message``: Colab's requests to its page, which nothing answers here.

Libraries that work on Colab call these (wandb asks for the notebook with
``blocking_request('get_ipynb')``). Off Colab there is no page to ask:
``blocking_request`` returns None at once, as Colab's does when its page
does not answer in time, and so do ``send_request`` and
``read_reply_from_input``.
"""

from google.colab import errors as _errors

__all__ = ["MessageError", "blocking_request", "read_reply_from_input", "send_request"]


class MessageError(_errors.Error):
    """Colab's: its page answered a request with an error. Never raised here."""


def blocking_request(request_type, request="", timeout_sec=5, parent=None):
    """None: nothing answers Colab's requests here."""
    return None


def send_request(request_type, request_body, parent=None, expect_reply=True):
    """None: the request goes nowhere."""
    return None


def read_reply_from_input(message_id, timeout_sec=None):
    """None: no reply comes."""
    return None
