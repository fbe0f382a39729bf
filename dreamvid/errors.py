"""User-facing errors: one clear line, exit code 2, no traceback."""


class DreamvidError(Exception):
    """Bad input or an unusable setting. The message is one line: what is wrong and what to do.

    The CLI prints it as ``dreamvid: error: <message>`` on stderr and exits with code 2.
    """

    exit_code = 2


class Interrupted(DreamvidError):
    """The user stopped a render (Ctrl-C); the checkpoint is consistent. Exit code 130."""

    exit_code = 130
