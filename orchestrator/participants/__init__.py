"""People invited to a conference: participants, moderators, speakers; their forums."""
