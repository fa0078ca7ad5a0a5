"""Accuracy intake, SAM, projection, CO2 and cost."""
