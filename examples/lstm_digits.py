"""Train the LSTM of examples.digits_models on scikit-learn's 8x8 digits and report the test
accuracy, compile time and training time per backend (see digits_models for the architecture).

Run: python -m examples.lstm_digits [--backend numba] [--epochs N] [--plot history.png]"""

from __future__ import annotations

import sys

from examples.digits_models import main

if __name__ == "__main__":
    sys.exit(main("lstm"))
