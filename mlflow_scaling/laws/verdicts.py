"""The words a comparison answers in (one home, used by the measured and the modelled parts)."""

BETTER, WORSE, CROSSES, NO_DIFFERENCE = "better", "worse", "crosses", "no_difference"
WITHHELD = "withheld"
"""The data cannot support a verdict; the reason says why."""
VERDICTS = (BETTER, WORSE, CROSSES, NO_DIFFERENCE, WITHHELD)
