"""zcpipe: node-wise zero-cost proxy statistics at scale."""

__version__ = "0.1.0"
# Bump when a proxy's computed value changes for the same inputs; it enters the configuration hash.
ENGINE_VERSION = "1"
