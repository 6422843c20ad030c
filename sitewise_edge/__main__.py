import sys

from sitewise_edge.cli import main

sys.exit(main())
