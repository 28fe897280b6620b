"""Zero-shot MAM evaluation (``mam-eval``): merge into a task-fine-tuned target and score it, no training."""
