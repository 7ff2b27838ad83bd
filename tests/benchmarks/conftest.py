# The benchmarks are scripts run by `make benchmark`, not tests: pytest never imports them.
collect_ignore_glob = ["*.py"]
