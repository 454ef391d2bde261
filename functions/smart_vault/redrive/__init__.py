"""Redrive: what a Redrive of a failed run re-attempts (each failed instance from the step it
failed at, with that step's input), and how each attempt reports itself."""
