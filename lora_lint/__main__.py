"""``python -m lora_lint`` is the ``lora-lint`` command."""

import sys

from lora_lint.cli import main

sys.exit(main())
