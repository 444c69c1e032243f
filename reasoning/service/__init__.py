"""The service's infrastructure, apart from the modelling library beside it.

Who calls (auth, keyring), where state lives (database and its migrations, stores,
artifacts, jobs, datasets, registry) and which outbound calls are allowed (egress). Still
no Ray: the actors and the Serve app call into these, and tests use them in milliseconds.
"""
