"""Clock, UTC time helpers, ids and the error tree. Standard library only."""
