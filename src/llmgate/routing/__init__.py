"""Which upstream answers a request: pure, no I/O.

    table.py    model name → provider; the models each provider declares
    catalog.py  the /v1/models listing: declared models merged with upstream lists, cached with a TTL
"""
