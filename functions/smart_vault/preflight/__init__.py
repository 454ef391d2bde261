"""Preflight: every function's calls proven against the real account with DryRun, before the first night."""
