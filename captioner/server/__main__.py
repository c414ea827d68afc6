"""`python -m captioner.server serve|models ...`: the server's own entry point.

The embedded server is started this way as a child process, so it works without the
`captioner` console script being installed.
"""

import sys

from captioner.server.cli import main

if __name__ == "__main__":
    sys.exit(main())
