"""Segment's Python SDK (unmodified), pointed at intake.

Usage: segment_python.py HOST WRITE_KEY gzip|plain ok|unknown-key
Sends one call of each type, flushes, and prints a JSON line:
{"messageIds": [...], "errors": [[status, message], ...]}
"""
import json
import sys

from segment.analytics import Client

host, write_key, mode, expectation = sys.argv[1:5]
errors = []


def on_error(error, _items):
    errors.append([getattr(error, "status", None), str(error)])


client = Client(
    write_key,
    host=host,
    gzip=(mode == "gzip"),
    on_error=on_error,
    max_retries=1,
    sync_mode=False,
)
ids = []
for call, args, kwargs in [
    ("track", ("user-1", "Order Completed"), {"properties": {"total": 9.5}}),
    ("identify", ("user-1",), {"traits": {"email": "ada@example.com"}}),
    ("page", ("user-1", "Docs", "Install"), {"properties": {"path": "/install"}}),
    ("screen", ("user-1", "App", "Home"), {}),
    ("group", ("user-1", "acme"), {"traits": {"plan": "pro"}}),
    ("alias", ("anon-7", "user-1"), {}),
]:
    ok, message = getattr(client, call)(*args, **kwargs)
    assert ok, message
    ids.append(message["messageId"])
client.flush()
client.join()
print(json.dumps({"messageIds": ids, "errors": errors}))
if expectation == "ok" and errors:
    sys.exit(f"the SDK reported errors: {errors}")
if expectation == "unknown-key" and not any(e[0] == 401 for e in errors):
    sys.exit(f"expected a 401 error, got {errors}")
