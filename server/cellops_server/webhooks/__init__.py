"""Signed webhooks from a durable outbox: the team's activity rows, delivered at least once
to the receivers an admin registered, never to a private address unless allowed.

events.py (which activity is which event, and its body), signing.py (headers), targets.py
(URL rules and the address check made at each attempt), send.py (one POST), outbox.py
(deliveries and attempts in the store), dispatcher.py (the background loop),
registry.py (what the API does).
"""
