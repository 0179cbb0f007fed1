"""``python -m tts_gym.cli`` runs the ``tts-gym`` command line."""

import sys

from tts_gym.cli import main

sys.exit(main())
