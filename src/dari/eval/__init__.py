"""Evaluation: retrieval metrics on eval sets, reports."""
