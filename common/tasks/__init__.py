"""Task-level loops shared by models of one task (evaluation and prediction drivers)."""
