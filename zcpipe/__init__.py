"""zcpipe: node-wise zero-cost proxy statistics at scale.

The stages are subpackages (`zcpipe.workers`, `zcpipe.store`, `zcpipe.predictors`, `zcpipe.pipeline`)
mapped from the top-level folders; `zcpipe.cli` is the command line. `zcpipe.version`, `zcpipe.errors`
and `zcpipe.settings` are the foundation every stage may import: they import nothing of zcpipe.
"""

from zcpipe.version import ENGINE_VERSION, __version__

__all__ = ["ENGINE_VERSION", "__version__"]
