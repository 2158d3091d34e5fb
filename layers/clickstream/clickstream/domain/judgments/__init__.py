"""Relevance judgments from clicks (contract 14): counts gathered while an export writes its ranges
(`counting`, standard library only) and click models fitted on them by the export's judge step (`models`,
numpy, imported only there)."""
