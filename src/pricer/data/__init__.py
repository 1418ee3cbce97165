"""Stage 1, data: items and their readers, statistics, and the reference's curation of raw listings."""

from pricer.data.items import ColumnMap, Item, read_items, read_items_with_report, write_items

__all__ = ["ColumnMap", "Item", "read_items", "read_items_with_report", "write_items"]
