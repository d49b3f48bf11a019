"""The defaults of the pipeline's configurations, in one torch-free place: the config classes take
their field defaults from here, and the CLI shows them without importing torch or Ray."""

from zcpipe import settings
from zcpipe.workers.proxy_sets import DEFAULT_PROXIES

# ingest
PROXIES = DEFAULT_PROXIES
DATA = "synthetic"
BATCH_SIZE = 64
SEED = 0
WORKERS = 1
CPUS_PER_WORKER = 1
ACTORS_PER_GPU = 1
CHUNK_SIZE = 16
DEVICE = "auto"
START_TIMEOUT_S = settings.START_TIMEOUT_S
STALL_TIMEOUT_S = settings.STALL_TIMEOUT_S
# training
TOP_K = 10
CPUS_PER_TRIAL = 1.0
# the store's default location, relative to where the command runs
STORE = "zcpipe-store"
