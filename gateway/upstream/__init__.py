"""The model server behind the gateway.

`client.py` is the one HTTP client (requests + sseclient-py) for every call, `failures.py` the one
place upstream failures become the gateway's errors, and `kinds.py` the one small interface with
an implementation per upstream API (`UPSTREAM_API=chat|responses`).
"""
