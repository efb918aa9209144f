"""Run, resume or inspect a training campaign: python scripts/campaign.py PLAN.toml [--status] [--minutes M].

See codec/training/campaign.py for the plan format and README.md ("Campaigns") for resuming on another machine.
"""

import sys

from codec.training.campaign import main

if __name__ == "__main__":
    sys.exit(main())
