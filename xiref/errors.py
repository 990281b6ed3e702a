"""The one exception type for problems with what the user gave: flags, files, directories, environments."""


class UserError(Exception):
    """A problem with the user's input: reported as one line `xiref: error: …`, exit status 2, no traceback."""
