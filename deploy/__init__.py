"""Deployment: the nginx template and the local cluster (`make cluster`, docs/deploy.md)."""
