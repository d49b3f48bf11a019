"""Workers stage: search spaces (model builders), the proxy engine and the per-chunk worker.

Knows nothing of Ray scheduling or of storage; `zcpipe.pipeline` wires it to both.
"""
