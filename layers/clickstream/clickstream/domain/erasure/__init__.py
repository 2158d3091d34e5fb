"""Erasing a user everywhere (contract 17): the request, and the steps of the erasure state machine."""
