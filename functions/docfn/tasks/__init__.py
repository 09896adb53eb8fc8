"""Layer 3: the tasks. The task contract (``contract.Task``: options model, ``load()``,
``predict_page()``, ``combine()``), the registry, and one folder per task with its models."""
