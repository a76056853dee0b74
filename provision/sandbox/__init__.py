"""The sandbox: a local Microsoft Graph look-alike for the part of Graph the job uses.

Served over loopback (``server``) by a thin ASGI app (``app``); docs/sandbox.md describes
what it serves. From the wire inwards:

- ``server``: uvicorn on loopback only, in a thread or in the foreground; ``embedded``: the
  child process a job run talks to, keeping its tenant between runs;
- ``app``: the ASGI layer (reads requests, token, connection-reset faults, latency, writes
  answers); ``admin``: the ``/_sandbox`` endpoints; ``wire``: request bodies in, Graph's
  answer and error shapes out; ``batch``: the ``$batch`` envelope and its item order;
- ``gateway``: the per-operation path direct requests and batch items share (throttling,
  injected 503/504, latency, counting); ``limits``: the profiles behind it; ``stats``: the
  counters; ``auth``: tokens and permissions;
- ``service``: the operation service (route, permission, body, rule; no HTTP);
  ``routes``: the URL grammar; ``operations``: each Graph operation as a tenant call;
- ``tenant``: the state and Graph's rules (pure); ``snapshot_format`` its JSON form,
  ``snapshot`` its files; ``state``: the ``Sandbox`` an app serves, swapped as a whole.
"""
