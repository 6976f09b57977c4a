"""The SQL store: typed models, engine/session factory and repository functions.

Repository functions take the session first and keyword-only arguments; they flush but leave
committing to the caller, so a request or a task decides what is one transaction.
"""
