"""pseudolabel stage: two-fold out-of-fold predictions on cell tiles and the threshold rule (SPEC 3.4)."""
