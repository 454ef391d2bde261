"""Verification: prove a recovery point's snapshots hold readable data, by reading a bounded
sample of their blocks with the EBS direct APIs and recognizing the file systems on them."""
