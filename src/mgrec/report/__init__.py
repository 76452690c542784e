"""Results people can look at: figures (`mgrec.report.figures`) and the one-file HTML report of a
run (`mgrec.report.html.write_report`, `analyze_run`)."""
