"""What happens to a message after the provider accepted it: delivery receipts (push and pull)."""
