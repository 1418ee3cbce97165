"""Whole catalogs priced: tables of any size read in chunks, estimates written as Parquet parts, resumable."""
