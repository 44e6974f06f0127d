"""The connection pool: a trader's subscriptions spread over the few connections a broker
allows."""
