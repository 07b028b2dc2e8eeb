"""Learning is real (not a test): train the demo profile's cell and image models on synthetic images with
weak labels and print the per-class ROC-AUC on held-out images, as JSON (see stages/dev/learning.py).

    .venv/bin/python bench/classify_learning.py                    # the default check (~5-10 min on 2 cores)
    .venv/bin/python bench/classify_learning.py --train-images 48  # any option of python -m stages.dev.learning
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stages.dev.learning import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
