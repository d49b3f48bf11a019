"""Named proxy sets the predictors default to (a leaf module, so predictors share it without importing
each other)."""

# The node-wise proxies ParZC's paper feeds its Mixer (Dong et al. 2024, Sec. 4).
PAPER_PROXIES = ("grad_norm", "snip", "synflow", "fisher")
