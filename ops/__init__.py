"""Operator tools run from a workstation against a deployed stack, with the operator's AWS credentials."""
