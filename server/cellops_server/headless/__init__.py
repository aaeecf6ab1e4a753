"""`cellops run`: a notebook executed headless (a CI job, a script), recorded as a run.

The run goes through the same capture code as a cell run in JupyterLab (the Tracker of
capture/tracker.py, fed by nbclient's messages instead of the kernel websocket), the same
spool and writer, into the local store or a team backend. ``command`` wires the
subcommand, ``runner`` orchestrates, ``executor`` feeds the tracker, ``service`` serves the
API to the kernel while the run lasts, ``recording`` owns the spool, ``parameters`` and
``ci`` read what the job passed and where it runs.
"""
