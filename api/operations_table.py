"""Print the README's table of every botocore ``iotsitewise`` operation, served or not.

    python -m api.operations_table      # paste between the markers in README.md

``tests/api/test_unserved.py`` fails when the README's table differs from what this prints.
"""

from __future__ import annotations

import sys

from api.app import served_operations
from api.sitewise.unserved import table


def main() -> int:
    print(table(served_operations()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
