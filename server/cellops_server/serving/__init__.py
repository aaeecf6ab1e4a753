"""Deployments and the processes that serve them.

A deployment is a row in the store (``deployments``): a name, a model, the traffic split
between its versions (one at 100 %, or a canary), the alias it follows, public or keyed.
Everything a serving process needs is read from the store, so deployments come back by
themselves after a restart and several backends can share one PostgreSQL.

- ``deployments.py``: the domain (create, change, roll back, split, delete, keys, events)
  over the store; the API handlers (api/deployments.py) are thin over it. ``desired()``
  answers what should be served, with every alias resolved.
- ``names.py``: the deployment name rule.
- ``loading.py``: an artifact to a model: sha256 verified, then skops with the server's
  own allow-list (cellops.serialize.check / loads, the module ``cellops.load`` uses);
  pickle is never loaded.
- ``protocols.py``: Open Inference Protocol v2 and MLflow scoring bodies to arrays and
  predictions back to bodies, with input checked against the version's signature.
- ``endpoints.py``: the HTTP surface (OIP v2, MLflow scoring, health, ``/metrics``), keys and
  member tokens, the version picked by the traffic split; used by workers and the router.
- ``router.py``: one process (``python -m cellops_server.serving``): owns the listening
  socket and hands each connection to a worker; starts, restarts and feeds the workers
  (what to load, what each deployment serves); Prometheus ``/metrics``, per-minute metrics
  and samples into the store; answers 503 + Retry-After while no worker can. It never runs
  a model.
- ``worker.py``: inference processes: each answers the connections it is handed (HTTP,
  keys, decode, predict, encode) in its own process, so a request crosses no second
  process; a crash costs 503s, answered by the router on the worker's connections.
- ``supervisor.py``: starts and restarts the router process, from the Jupyter server
  extension (embedded mode, when the first deployment exists) or `cellops serve
  --serving-port` (team mode).
"""
