"""The task owner's role: train or bring teachers, create and fund tasks, reveal eval sets."""
