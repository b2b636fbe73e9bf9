"""The catalog report: what every image's records say, as one HTML page or one JSON document."""
