"""Recovery: recovery points read back from tags, restore planning, and the scheduled restore drill."""
