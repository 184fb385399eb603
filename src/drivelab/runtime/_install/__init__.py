"""Choosing and installing the build that fits: ``overrides`` (what the user forced), ``plan``, ``pip`` (pip or uv)."""
