"""Version constants, in a module of their own so that every stage can read them without importing the CLI."""

__version__ = "0.1.0"
# Bump when a proxy's computed value changes for the same inputs; it enters the configuration hash.
ENGINE_VERSION = "1"
