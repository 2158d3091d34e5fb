"""Erasing a user everywhere (contract 17): requests and the registration guard (`requests`), and the steps
of the erasure state machine (`steps`, `purge`, `worklist`)."""
