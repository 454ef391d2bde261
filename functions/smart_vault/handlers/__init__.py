"""Lambda entry points: parse the input, call one domain function, return a model."""
