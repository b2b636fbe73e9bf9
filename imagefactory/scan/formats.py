"""The scanner report formats :func:`imagefactory.scan.reports.read_report` reads, apart from
the readers so the command line declares its ``--format`` option without importing them."""

FORMATS = ("auto", "trivy", "grype", "cyclonedx-vex")
