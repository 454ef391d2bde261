"""Reporting: the run summary, the SNS alert, the metrics and the audit record of a run."""
