"""Cells from a mask: labelled instances (touching cells split), their measurements and CSVs."""
