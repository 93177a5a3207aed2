"""The conference record: editions, their sessions and forums."""
