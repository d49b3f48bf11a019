"""The defaults the pipeline's commands share, in one torch-free place. Each configuration declares its
own fields' defaults where it defines them (`IngestConfig` with `setting`); what is here is used by
more than one of them or by the CLI without a config."""

SEED = 0
# training
TOP_K = 10
CPUS_PER_TRIAL = 1.0
# the store's default location, relative to where the command runs
STORE = "zcpipe-store"
