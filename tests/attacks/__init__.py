"""The standing attack suite: each module performs one family of attacks on a real server."""
