"""The `softmax` command (placeholder until the command-line issue lands)."""

import sys


def main(argv=None) -> int:
    from . import softmax

    scores = {"cat": 2.0, "dog": 1.0, "rabbit": 0.1}
    p = softmax(list(scores.values()))
    for (label, score), share in zip(scores.items(), p):
        print(f"{label:>8} {score:6.2f} {share:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
