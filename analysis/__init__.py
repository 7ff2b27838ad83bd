"""spikescale analysis: scaling metrics and figures from a campaign's runs.csv."""
