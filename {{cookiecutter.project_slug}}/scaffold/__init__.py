"""Code generators behind ``make new-*`` targets: developer tools, not part of the service."""
