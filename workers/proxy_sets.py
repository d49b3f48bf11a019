"""Named sets of proxies. No torch here, so the CLI can show the defaults without importing it."""

# The five the card names; the default of `zcpipe ingest --proxies`.
DEFAULT_PROXIES = ("synflow", "snip", "grad_norm", "fisher", "grasp")
# zero-cost-nas's seven, the engine benchmark's set.
ZC_NAS_PROXIES = ("grad_norm", "snip", "grasp", "fisher", "jacov", "plain", "synflow")
