"""One module per StaMPS processing step (and its Small Baseline variant)."""
