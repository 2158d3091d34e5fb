"""Relevance judgments from clicks (SPEC 14): counts per (query, object, position) gathered by the export
(`counting`, standard library only), click models fitted on them (`models`, numpy: imported only by the
export's judge step, so no other function's cold start pays for it)."""
