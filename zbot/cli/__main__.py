"""`python -m zbot.cli ...`: the same as the `zbot` command."""

import sys

from zbot.cli.main import main

sys.exit(main())
