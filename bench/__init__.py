"""`make bench`: the bot against a bare aiohttp server and Microsoft's stock EchoBot, plus micro-benchmarks.

Run `python -m bench` from the repository root (the Makefile does). Every server runs in its own
subprocess so its CPU time can be read from /proc; all traffic stays on 127.0.0.1. See __main__.py for
the environment variables that size the run.
"""
