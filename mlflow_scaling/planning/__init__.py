"""The cluster request: GPUs, memory per GPU and days for a training run (``mlflow-scaling plan``).

``gpus`` (the accelerator table), ``memory`` (bytes of model states, activations and buffers),
``compute`` (FLOPs, GPU-hours, days, cost) and ``plan`` (strategies, micro-batch, GPUs) are plain
arithmetic, free of MLflow; ``family`` reads what a plan needs from a family in MLflow.
"""
