"""Experiment layer: run configs, single runs, comparisons, checkpoints, callbacks and the CLI."""
