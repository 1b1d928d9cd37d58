"""Weak labels from users: the Telegram reaction ledger, the emoji→score mapping, the join of\nreactions on chunked messages to runs and events, and the daily audit.\n"""
