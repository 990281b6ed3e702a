"""The one exception type for problems with what the user gave: flags, files, directories, environments."""
import sys


class UserError(Exception):
    """A problem with the user's input: reported as one line `xiref: error: …`, exit status 2, no traceback."""


def script_error(prog, message):
    """End a script on a user error: one line `<prog>: error: <message>` on stderr, exit status 2, no traceback."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    raise SystemExit(2)
