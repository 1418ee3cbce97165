"""The deal finder of the reference's week 8: offers read from feeds and files, priced by a model, ranked by how far
below the estimate they are offered, remembered so that none is surfaced twice, and pushed to a webhook."""
