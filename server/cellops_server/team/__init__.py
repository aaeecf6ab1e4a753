"""Team mode: `cellops serve`, users and personal tokens, and forwarding from Jupyter servers."""
