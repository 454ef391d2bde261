"""Off-site copies: each run's snapshots copied to other Regions, held until copied, pruned there."""
