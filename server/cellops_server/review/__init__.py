"""Team review: comments, reviews and approvals, promotion policies, the activity record
and inboxes. Plain domain functions over the store; the handlers in api/ stay thin."""
