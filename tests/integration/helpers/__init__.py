"""The helper library of the integration tests; ``tests/integration/conftest.py`` keeps only the
fixtures built from it.

* ``services``: the host services from ``scripts/services.sh`` (dockerd via Debian's
  ``/usr/bin/docker``, the authenticated registry), running commands, the checks that fail a run
  clearly when a service is missing;
* ``registry``: the loopback registry A (HTTP requests, clean-up of a namespace);
* ``example``: the example catalog, copied, rewritten for a session and built by the real CLI;
* ``tls_registry``: registry B, over TLS from a generated CA (also used by ``bench/``);
* ``tcp_forward``: a bounded TCP forwarder; ``bridge``: the Docker bridge's address on this
  machine, where the forwarder listens.
"""
