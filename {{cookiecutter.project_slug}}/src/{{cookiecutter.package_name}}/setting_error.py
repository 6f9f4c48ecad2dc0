"""The error of a setting refused at start (the broker, the outbox): the entry points print
its message as one ERROR line, so the variable to fix is the last thing the user reads."""


class SettingError(ValueError):
    """A setting breaks its rule; the message names both, on one line."""
