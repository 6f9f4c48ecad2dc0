"""The service package: one sub-package per domain, plus its entry points."""
