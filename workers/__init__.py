"""Celery task modules. Each task loads ids, calls one service, and reports progress."""
