"""What keeps the backend's doors shut: the API key, TLS certificates, private files, secrets in
the OS keychain, and the rules for serving other machines."""
