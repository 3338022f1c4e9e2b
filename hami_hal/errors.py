"""Exceptions with a one-line, user-facing message.

Every error a user can cause (bad pod YAML, bad profile, impossible request) derives from
:class:`HalError`; the CLI prints ``str(err)`` as a single line and exits non-zero, never a traceback.
"""

from __future__ import annotations


class HalError(Exception):
    """Base class: the message is one complete line meant for the user."""

    exit_code = 2


class InputError(HalError):
    """A user-supplied value is invalid. Names the field and the offending value."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        field = str(field).replace("\n", "\\n").replace("\r", "\\r")  # user text in a field name: still one line
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field}: {value!r} {reason}")


class ProfileError(HalError):
    """A simulated-hardware profile file is malformed or references something unknown."""


class BackendUnavailable(HalError):
    """A plugin's vendor library, driver or tool is absent on this node.

    Raised from discovery; the plugin manager turns it into one 'skipped: <reason>' line
    instead of failing the process.
    """


class PluginLoadError(HalError):
    """A plugin implements an unknown hook or a hook with a wrong signature."""


class AllocationError(HalError):
    """A request cannot be placed. ``failures`` holds the per-device reasons."""

    def __init__(self, message: str, failures: list | None = None) -> None:
        self.failures = failures or []
        super().__init__(message)
