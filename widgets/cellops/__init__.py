"""cellops: the notebook-side library (``import cellops``).

It stays light: the standard library only, so importing it never slows a kernel down.
The public API for logging and the model registry arrives with the registry work.
"""

__version__ = "0.1.0"
