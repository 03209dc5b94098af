"""evaluate.py: not implemented yet (see the project's open issues).

This placeholder only parses flags and says so; it never pretends to work.
"""

import sys

from absl import app


def main(argv):
    del argv
    sys.exit("evaluate.py is not implemented yet: see the open issues of decompnet-tf.")


if __name__ == "__main__":
    app.run(main)
