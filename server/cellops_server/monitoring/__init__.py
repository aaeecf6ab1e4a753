"""Drift of served requests against the data a model version was trained on.

- ``reference.py``: the training reference of a version. The kernel summarizes the data
  (``cellops.reference.summarize``, the same code, imported here) and sends it with the
  version; the server validates it (``check``) and stores it in ``training_references``
  in the registration's transaction.
- ``samples.py``: served requests' inputs and predictions, sampled by the serving router
  (a share of requests, at most N per deployment and second; serving/stats.py writes them
  off the request path) into ``deployment_samples`` (``add_samples``), bounded per deployment; read back over a
  window (``recent_samples``).
- ``drift.py``: per feature KS, PSI and Wasserstein (numeric) or chi² and PSI (categorical)
  of samples against a reference (``drift``), with thresholds from the settings; and a
  deployment's drift over a window (``deployment_drift``), which records the transition into
  drift once (a ``drift_changed`` deployment event and a ``deployment.drift_started``
  activity).
- ``watch.py``: the deployment watcher, in the process that owns the store and the activity
  hub: drift checked every ``drift_check_interval`` seconds without anyone asking, and
  changes other processes write (the router's states, a recorded verdict) published to the
  sidebars within about a second.
"""
