"""The rules of the service (docs/contract.md), one module per protocol; no HTTP and no boto3 here.

The domain reaches tables, the lake, the bus and the queue only through its ports (`ports`: Protocols that
clickstream.storage implements); tests/unit/test_layering.py imports every module here with boto3 refused.

registration  claim a session_id, number it, place it in its slot, take over a stalled registration
release       seal the collecting batch, hand it over, settle it (every number a session or a tombstone)
paging        pages of a batch within the response size cap
sessions      events, irrelevant marks and reads of one session
improvement   scheduling sessions for model improvement
rules         the input rules every route applies (timestamps, sizes, JSON text)
"""
