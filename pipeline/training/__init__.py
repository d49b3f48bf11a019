"""Training: takes a store with statistics, graphs and labels; gives fitted, registered models and
what they say (metrics, scores, the top-k, a pruned cell).

    config.py      TrainConfig (one fit) and `key=value` predictor options
    fit.py         fit on N cells, test on the rest, save and register; validate for model selection
    evaluate.py    a saved model's metrics on its held-out cells; its scores for every cell
    topk.py        a model's best cells with their labels
    prune.py       TG-NAS's pruning search on a space's supernet
    sweeps.py      grids of fits and hyper-parameter searches as Ray Tune trials
    node_stats.py  ZC-GCN's per-node statistics from the slot axis
"""
