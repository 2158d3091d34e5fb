"""Released batches as datasets (contract 7): the export's parts, its quality report, its manifest."""
