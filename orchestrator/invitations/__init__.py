"""Calendar invitations: what each person's calendar holds, updates and cancellations."""
