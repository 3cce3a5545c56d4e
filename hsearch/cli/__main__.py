import sys

from hsearch.cli import main

sys.exit(main())
