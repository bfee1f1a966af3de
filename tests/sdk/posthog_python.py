"""Drives posthog (PyPI) against a Sluice gateway, gzip on.

Env (SDK_PAST_MS included) and output as in segment-node.js; ids are the
events' `uuid`s.
"""

import datetime
import json
import os
import sys
import uuid

from posthog import Posthog

errors = []
client = Posthog(
    os.environ["SLUICE_KEY"],
    host=os.environ["SLUICE_URL"],
    gzip=True,
    flush_at=7,
    flush_interval=0.2,
    max_retries=5,
    on_error=lambda err, batch: errors.append(f"{err}: {len(batch)} events"),
    disable_geoip=True,
)
run = os.environ["SDK_RUN"]
past = {}
if os.environ.get("SDK_PAST_MS"):
    ago = datetime.timedelta(milliseconds=int(os.environ["SDK_PAST_MS"]))
    past = {"timestamp": datetime.datetime.now(datetime.timezone.utc) - ago}
events = []
for i in range(int(os.environ.get("SDK_EVENTS", "20"))):
    event_id = str(uuid.uuid4())
    distinct_id = f"user-{i % 3}"
    client.capture(
        "item purchased",
        distinct_id=distinct_id,
        properties={"run": run, "seq": i},
        uuid=event_id,
        **past,
    )
    events.append({"uuid": event_id, "event": "item purchased", "distinctId": distinct_id})
client.shutdown()
out = {"sent": events, "failed": []} if not errors else {"sent": [], "failed": events, "errors": errors}
sys.stdout.write(json.dumps(out) + "\n")
