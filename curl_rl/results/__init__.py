"""Results layer: statistics, summaries, plots and the representation probe."""
