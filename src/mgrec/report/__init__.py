"""Results people can look at: figures (`figures`, matplotlib), the one-file HTML report of a run
(`html.write_report`, `analyze_run`), and a browser screenshot of a report (`screenshot`)."""
