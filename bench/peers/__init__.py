"""Peers of the worker in part 2: other engines doing a simple version of its job on the same topic.

`simple_job` is that job (stdlib only: it runs inside the peers' own virtualenv too) and its
reference; `quix_peer` and `bytewax_peer` run it on Quix Streams and bytewax as child processes of
the bench, from the virtualenv `venv` builds from `requirements.txt`; `run` starts, measures and
checks them.
"""
